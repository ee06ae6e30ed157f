//! # entropic
//!
//! Classification losses whose mathematics is checked by machine:
//! information content, entropy, cross-entropy, KL and JS divergence,
//! stable log-sum-exp / softmax / log-softmax, softmax and binary
//! cross-entropy from logits, `F.kl_div`, focal loss and the bi-tempered
//! logistic loss — each with an analytic gradient.
//!
//! ## Layers
//! 1. **Definitions** (the reference): every loss is written once, generic
//!    over [`Real`], a scalar trait implemented for `f32`, `f64` and every
//!    num-dual dual number. The verifier differentiates this very code.
//! 2. **Fast kernels** (`loss`, `loss_and_grad`, `loss_and_grad_into`): `f32`
//!    and `f64` batch paths with the analytic gradient fused into the
//!    forward pass, accumulating in `f64`. They must agree with the
//!    definitions (tested in ulps).
//! 3. **Options and reductions**: validated once at construction
//!    (`with_*` builders return `Result`); [`Reduction`] with PyTorch's
//!    denominators.
//!
//! Bad input never panics: every function returns a typed [`Error`] that
//! names the offending value and its position.
//!
//! ## Example
//! ```
//! use entropic::{Batch, SoftmaxCrossEntropy, Targets};
//! let logits = [2.0_f32, 1.0, 0.1, 0.5, 2.5, 0.3];
//! let (out, grad) = SoftmaxCrossEntropy::new()
//!     .loss_and_grad(Batch::new(&logits, 2, 3)?, Targets::<f32>::Classes(&[0, 1]))?;
//! assert!(out.reduced.unwrap() > 0.0);
//! assert_eq!(grad.len(), 6);
//! # Ok::<(), entropic::Error>(())
//! ```
#![warn(missing_docs)]

mod batch;
mod binary_cross_entropy;
mod cross_entropy;
mod domain;
mod error;
mod focal;
mod information;
mod kernels;
mod kl_div;
mod real;
mod reduction;
mod softmax;
mod tempered;

pub use batch::{Batch, BatchBuf};
pub use binary_cross_entropy::{BinaryCrossEntropyWithLogits, log_sigmoid, sigmoid, softplus};
pub use cross_entropy::{SoftmaxCrossEntropy, Targets};
pub use domain::NORMALIZATION_TOLERANCE_EPS_PER_ENTRY;
pub use error::{Error, Position, Result};
pub use information::{
    Base, cross_entropy, cross_entropy_grad, entropy, entropy_grad, information, js_divergence, js_divergence_grad,
    kl_divergence, kl_divergence_grad,
};
pub use kl_div::KlDiv;
pub use real::{Float, Real};
pub use reduction::{LossOutput, Reduction};
pub use softmax::{
    log_softmax, log_softmax_batch_into, log_softmax_vjp, logsumexp, softmax, softmax_batch_into, softmax_vjp,
};

#[allow(unused_imports)]
pub use focal::*;
#[allow(unused_imports)]
pub use tempered::*;
