//! Named tolerances and error measurement in ulps and relative error.

use serde::Serialize;

/// How far two values may be apart for a check to pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Bound {
    /// Units in the last place of `f64` (or of `f32` for f32 checks).
    Ulps(f64),
    /// `|a − b| ≤ r · scale`, the scale being stated by the check (the
    /// larger magnitude, or the max-norm of a gradient).
    Relative(f64),
}

/// A bound with the reason it is what it is. Every check carries one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// The bound.
    pub bound: Bound,
    /// Why this bound, in a sentence.
    pub reason: &'static str,
}

impl Tolerance {
    /// An ulp bound with its reason.
    pub const fn ulps(n: f64, reason: &'static str) -> Self {
        Self {
            bound: Bound::Ulps(n),
            reason,
        }
    }
    /// A relative bound with its reason.
    pub const fn relative(r: f64, reason: &'static str) -> Self {
        Self {
            bound: Bound::Relative(r),
            reason,
        }
    }
    /// Whether a measured error is within the bound.
    pub fn admits(&self, e: &Measured) -> bool {
        match self.bound {
            Bound::Ulps(n) => e.ulps <= n,
            Bound::Relative(r) => e.rel <= r,
        }
    }
    /// Short rendering, e.g. `≤ 4 ulp` or `≤ 1.0e-12 rel`.
    pub fn describe(&self) -> String {
        match self.bound {
            Bound::Ulps(n) => format!("<= {n} ulp"),
            Bound::Relative(r) => format!("<= {r:.1e} rel"),
        }
    }
}

/// One comparison's error, in both units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measured {
    /// Distance in ulps of `f64` (`f64::INFINITY` when one side is NaN or
    /// the infinities differ); for a comparison against a stated scale, in
    /// ulps of that scale.
    pub ulps: f64,
    /// `|a − b| / scale` (0 when equal).
    pub rel: f64,
}

impl Measured {
    /// Exact agreement.
    pub const ZERO: Measured = Measured { ulps: 0.0, rel: 0.0 };

    /// Compares `a` with the reference `b`, relative to `max(|a|, |b|)`.
    pub fn between(a: f64, b: f64) -> Self {
        Self::scaled(a, b, a.abs().max(b.abs()))
    }

    /// Compares `a` with `b` relative to a given scale (e.g. a gradient's
    /// max-norm, so that tiny entries are not judged in relative terms).
    pub fn scaled(a: f64, b: f64, scale: f64) -> Self {
        if a == b {
            return Self::ZERO;
        }
        if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
            return Self {
                ulps: f64::INFINITY,
                rel: f64::INFINITY,
            };
        }
        let rel = if scale > 0.0 {
            (a - b).abs() / scale
        } else {
            f64::INFINITY
        };
        // In units of the last place of the scale: a gradient entry near 0 is
        // judged against the gradient's largest entry, not its own magnitude.
        let ulps = if scale.is_finite() && scale > 0.0 && scale != a.abs().max(b.abs()) {
            ((a - b).abs() / ulp_of(scale)).ceil()
        } else {
            ulps64(a, b) as f64
        };
        Self { ulps, rel }
    }

    /// Compares two f32 values in ulps of f32.
    pub fn between_f32(a: f32, b: f32) -> Self {
        if a == b {
            return Self::ZERO;
        }
        if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
            return Self {
                ulps: f64::INFINITY,
                rel: f64::INFINITY,
            };
        }
        let key = |x: f32| {
            let bits = x.to_bits() as i32;
            if bits < 0 { i32::MIN - bits } else { bits }
        };
        let rel = (f64::from(a) - f64::from(b)).abs() / f64::from(a.abs().max(b.abs()));
        Self {
            ulps: f64::from(key(a).abs_diff(key(b))),
            rel,
        }
    }

    /// The larger of two errors, component-wise.
    pub fn max(self, other: Self) -> Self {
        Self {
            ulps: self.ulps.max(other.ulps),
            rel: self.rel.max(other.rel),
        }
    }
}

/// The spacing of f64 values at `x` (`x` finite, non-zero).
pub fn ulp_of(x: f64) -> f64 {
    let x = x.abs();
    let next = f64::from_bits(x.to_bits() + 1);
    next - x
}

/// Distance in ulps between two finite f64.
pub fn ulps64(a: f64, b: f64) -> u64 {
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 { i64::MIN - bits } else { bits }
    };
    key(a).abs_diff(key(b))
}

/// Running maximum of errors over the cases of one check, remembering the
/// worst input and the first failure.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Cases tried.
    pub cases: usize,
    /// Largest error seen (by the bound's own unit).
    pub worst: Option<(Measured, String)>,
    /// First failing case: the input and what went wrong.
    pub failure: Option<String>,
}

impl Tally {
    /// Records one comparison for `input` (a short description) under `tol`.
    pub fn record(&mut self, tol: &Tolerance, e: Measured, input: impl FnOnce() -> String) {
        self.cases += 1;
        let key = |m: &Measured| match tol.bound {
            Bound::Ulps(_) => m.ulps,
            Bound::Relative(_) => m.rel,
        };
        let worse = self.worst.as_ref().is_none_or(|(w, _)| key(&e) > key(w));
        let fails = !tol.admits(&e);
        if worse || (fails && self.failure.is_none()) {
            let s = input();
            if fails && self.failure.is_none() {
                self.failure = Some(format!(
                    "{s}: error {} ulp / {:.3e} rel exceeds {}",
                    e.ulps,
                    e.rel,
                    tol.describe()
                ));
            }
            if worse {
                self.worst = Some((e, s));
            }
        }
    }

    /// Records a case that must simply hold (an inequality or a property),
    /// with `detail` explaining a violation.
    pub fn require(&mut self, ok: bool, detail: impl FnOnce() -> String) {
        self.cases += 1;
        if !ok && self.failure.is_none() {
            self.failure = Some(detail());
        }
        if self.worst.is_none() {
            self.worst = Some((Measured::ZERO, String::new()));
        }
    }

    /// Merges another tally into this one.
    pub fn absorb(&mut self, tol: &Tolerance, other: Tally) {
        self.cases += other.cases;
        if self.failure.is_none() {
            self.failure = other.failure;
        }
        if let Some((e, s)) = other.worst {
            let key = |m: &Measured| match tol.bound {
                Bound::Ulps(_) => m.ulps,
                Bound::Relative(_) => m.rel,
            };
            if self.worst.as_ref().is_none_or(|(w, _)| key(&e) > key(w)) {
                self.worst = Some((e, s));
            }
        }
    }
}
