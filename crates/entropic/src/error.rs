//! Typed errors shared by every function of the crate.

use std::fmt;

/// Where in an input an offending value sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Index into a flat vector.
    Index(usize),
    /// Row and column of a row-major `[n, c]` batch.
    Cell {
        /// Row (sample) index.
        row: usize,
        /// Column (class) index.
        col: usize,
    },
    /// A whole row of a batch.
    Row(usize),
}

impl Position {
    /// The position of flat index `i` in a row-major batch with `c` columns.
    pub fn cell(i: usize, c: usize) -> Self {
        match (i.checked_div(c), i.checked_rem(c)) {
            (Some(row), Some(col)) => Position::Cell { row, col },
            _ => Position::Index(i),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Index(i) => write!(f, "index {i}"),
            Position::Cell { row, col } => write!(f, "row {row}, column {col}"),
            Position::Row(r) => write!(f, "row {r}"),
        }
    }
}

/// Everything that can go wrong with the inputs of a loss or divergence.
///
/// Every variant names the offending value and where it sits. No public
/// function of this crate panics on bad input: it returns one of these.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two inputs whose lengths must agree do not.
    #[error("shape mismatch: {what} has length {actual}, expected {expected}")]
    ShapeMismatch {
        /// The input whose length is wrong.
        what: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        actual: usize,
    },
    /// `n · c` overflows `usize` or a dimension that must be positive is 0.
    #[error("invalid shape for {what}: {n} x {c} ({requirement})")]
    InvalidShape {
        /// The input.
        what: &'static str,
        /// Rows.
        n: usize,
        /// Columns.
        c: usize,
        /// What the shape must satisfy.
        requirement: &'static str,
    },
    /// An input that must not be empty is.
    #[error("{what} is empty")]
    Empty {
        /// The empty input.
        what: &'static str,
    },
    /// A class index is not below the number of classes.
    #[error("class index {class} at row {row} is out of range for {classes} classes")]
    ClassOutOfRange {
        /// Row of the target.
        row: usize,
        /// The class index given.
        class: usize,
        /// The number of classes `c`.
        classes: usize,
    },
    /// A value is NaN or infinite where only finite values are allowed.
    #[error("{what} at {at} is {value}, but must be {requirement}")]
    NonFinite {
        /// The input holding the value.
        what: &'static str,
        /// Where it sits.
        at: Position,
        /// The value (NaN or ±∞).
        value: f64,
        /// What is allowed instead.
        requirement: &'static str,
    },
    /// A finite value outside its allowed range (a negative weight, a
    /// probability above 1, a label outside [0, 1], …).
    #[error("{what} at {at} is {value}, but must be {requirement}")]
    OutOfDomain {
        /// The input holding the value.
        what: &'static str,
        /// Where it sits.
        at: Position,
        /// The value.
        value: f64,
        /// The allowed range.
        requirement: &'static str,
    },
    /// A probability vector does not sum to 1 within the stated tolerance.
    #[error("{what} at {at} sums to {sum}, not 1 (allowed deviation {tolerance:e})")]
    NotNormalized {
        /// The input.
        what: &'static str,
        /// The row (or the whole vector).
        at: Position,
        /// Its sum.
        sum: f64,
        /// The allowed |sum − 1|.
        tolerance: f64,
    },
    /// A parameter (set once, at construction) is invalid.
    #[error("invalid parameter {name} = {value}: must be {requirement}")]
    InvalidParameter {
        /// Parameter name (PyTorch / paper spelling).
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy.
        requirement: &'static str,
    },
    /// Two options that cannot be combined.
    #[error("incompatible options: {0}")]
    IncompatibleOptions(&'static str),
    /// A row whose logits are all −∞: its softmax is undefined.
    #[error("{what} row {row} has no finite entry (every logit is -inf), so its softmax is undefined")]
    NoFiniteLogit {
        /// The input.
        what: &'static str,
        /// The row.
        row: usize,
    },
    /// A mean reduction whose denominator is zero (every target ignored,
    /// or all weights of the present targets are 0). PyTorch returns NaN here.
    #[error("mean reduction has total weight {total}: every target is ignored or has weight 0")]
    ZeroTotalWeight {
        /// The denominator that would have been used.
        total: f64,
    },
    /// An iterative solver hit its safety cap without converging.
    #[error("{what} did not converge in {iterations} iterations at row {row} (residual {residual:e})")]
    NotConverged {
        /// The quantity being solved for.
        what: &'static str,
        /// The row.
        row: usize,
        /// The iteration cap that was hit.
        iterations: usize,
        /// The remaining residual.
        residual: f64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
