//! `entropic check`: compares another implementation's results (the
//! `entropic eval` output format, one JSON object per line with `id`) with
//! the conformance vectors, case by case, in ulps.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::oracle::Dtype;

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Every value within the allowance.
    Pass,
    /// Some value beyond the allowance.
    Over,
    /// No result with this id.
    Missing,
    /// A NaN (or a missing field) where the reference is a number.
    Invalid(String),
}

/// One case's comparison.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Loss name.
    pub loss: String,
    /// Largest error of the values (`per_sample`, `loss`) in ulps.
    pub value_ulps: f64,
    /// Largest gradient error in ulps of the gradient's largest entry.
    pub grad_ulps: f64,
    /// Largest relative error of the values.
    pub value_rel: f64,
    /// The allowance in ulps.
    pub allowance: f64,
    /// Verdict.
    pub status: Status,
}

/// All case results.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Per case, in vector order.
    pub cases: Vec<CaseResult>,
    /// Result ids that match no vector.
    pub unknown: Vec<String>,
}

fn ulp(x: f64, dtype: Dtype) -> f64 {
    match dtype {
        Dtype::F64 => {
            let a = x.abs().max(f64::MIN_POSITIVE);
            f64::from_bits(a.to_bits() + 1) - a
        }
        Dtype::F32 => {
            let a = (x.abs() as f32).max(f32::MIN_POSITIVE);
            f64::from(f32::from_bits(a.to_bits() + 1) - a)
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            "nan" => Some(f64::NAN),
            _ => None,
        },
        _ => None,
    }
}

fn flatten(v: &Value, out: &mut Vec<Option<f64>>) {
    match v {
        Value::Array(xs) => xs.iter().for_each(|x| flatten(x, out)),
        Value::Null => {}
        other => out.push(number(other)),
    }
}

fn flat(v: Option<&Value>) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    if let Some(v) = v {
        flatten(v, &mut out);
    }
    out
}

/// Error of `got` against `want` in ulps of `scale` (of `want` itself when
/// `scale` is `None`); `None` when `got` is NaN/missing or the two
/// infinities differ.
fn err_ulps(got: Option<f64>, want: f64, scale: Option<f64>, dtype: Dtype) -> Option<(f64, f64)> {
    let g = got?;
    if g.is_nan() && !want.is_nan() {
        return None;
    }
    if g == want || (g.is_nan() && want.is_nan()) {
        return Some((0.0, 0.0));
    }
    if !g.is_finite() || !want.is_finite() {
        return None;
    }
    let s = scale.unwrap_or(want);
    Some((
        (g - want).abs() / ulp(s, dtype),
        (g - want).abs() / want.abs().max(f64::MIN_POSITIVE),
    ))
}

/// Compares results with vectors for `dtype`.
pub fn check(results: &[Value], vectors: &[Value], dtype: Dtype) -> CheckReport {
    let key = match dtype {
        Dtype::F64 => "f64",
        Dtype::F32 => "f32",
    };
    let by_id: BTreeMap<String, &Value> = results
        .iter()
        .filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r)))
        .collect();
    let mut report = CheckReport::default();
    let mut seen = std::collections::BTreeSet::new();
    for v in vectors {
        let id = v.get("id").and_then(Value::as_str).unwrap_or("?").to_string();
        let loss = v.get("loss").and_then(Value::as_str).unwrap_or("?").to_string();
        let allowance = v
            .pointer(&format!("/allowance_ulps/{key}"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let expected = v.pointer(&format!("/expected/{key}"));
        let mut case = CaseResult {
            id: id.clone(),
            loss,
            value_ulps: 0.0,
            grad_ulps: 0.0,
            value_rel: 0.0,
            allowance,
            status: Status::Pass,
        };
        seen.insert(id.clone());
        let (Some(r), Some(expected)) = (by_id.get(&id), expected) else {
            case.status = Status::Missing;
            report.cases.push(case);
            continue;
        };
        if let Some(e) = r.get("error") {
            case.status = Status::Invalid(format!("the implementation reported an error: {e}"));
            report.cases.push(case);
            continue;
        }
        let mut problems = Vec::new();
        for field in ["per_sample", "loss"] {
            let want = flat(expected.get(field));
            let got = flat(r.get(field));
            if want.len() != got.len() {
                problems.push(format!("{field}: {} values, expected {}", got.len(), want.len()));
                continue;
            }
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                match (w, err_ulps(*g, w.unwrap_or(f64::NAN), None, dtype)) {
                    (Some(_), Some((u, rel))) => {
                        case.value_ulps = case.value_ulps.max(u);
                        case.value_rel = case.value_rel.max(rel);
                    }
                    _ => problems.push(format!("{field}[{i}]: got {g:?}, expected {w:?}")),
                }
            }
        }
        let want = flat(expected.get("grad"));
        let got = flat(r.get("grad"));
        let scale = want
            .iter()
            .flatten()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |m, x| m.max(x.abs()));
        if want.len() != got.len() {
            problems.push(format!("grad: {} values, expected {}", got.len(), want.len()));
        } else {
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                match (
                    w,
                    err_ulps(*g, w.unwrap_or(f64::NAN), Some(scale.max(f64::MIN_POSITIVE)), dtype),
                ) {
                    (Some(_), Some((u, _))) => case.grad_ulps = case.grad_ulps.max(u),
                    _ => problems.push(format!("grad[{i}]: got {g:?}, expected {w:?}")),
                }
            }
        }
        case.status = if !problems.is_empty() {
            Status::Invalid(problems.join("; "))
        } else if case.value_ulps > allowance || case.grad_ulps > allowance {
            Status::Over
        } else {
            Status::Pass
        };
        report.cases.push(case);
    }
    report.unknown = by_id.keys().filter(|k| !seen.contains(*k)).cloned().collect();
    report
}

impl CheckReport {
    /// True when every case passed and nothing is missing.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.status == Status::Pass)
    }

    /// Summary per loss, then the worst and the failing cases.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "{:<36} {:>6} {:>6} {:>12} {:>12} {:>10}\n",
            "loss", "cases", "pass", "max ulp val", "max ulp grad", "allowance"
        );
        let mut by_loss: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
        for c in &self.cases {
            by_loss.entry(&c.loss).or_default().push(c);
        }
        for (loss, cs) in &by_loss {
            let pass = cs.iter().filter(|c| c.status == Status::Pass).count();
            let mv = cs.iter().map(|c| c.value_ulps).fold(0.0, f64::max);
            let mg = cs.iter().map(|c| c.grad_ulps).fold(0.0, f64::max);
            let al = cs.iter().map(|c| c.allowance).fold(0.0, f64::max);
            let _ = writeln!(s, "{loss:<36} {:>6} {pass:>6} {mv:>12.0} {mg:>12.0} {al:>10}", cs.len());
        }
        let mut worst: Vec<&CaseResult> = self.cases.iter().collect();
        worst.sort_by(|a, b| (b.value_ulps.max(b.grad_ulps)).total_cmp(&a.value_ulps.max(a.grad_ulps)));
        let _ = writeln!(s, "\nworst cases:");
        for c in worst.iter().take(5) {
            let _ = writeln!(
                s,
                "  {:<48} value {:>8.0} ulp  grad {:>8.0} ulp  (allowance {})",
                c.id, c.value_ulps, c.grad_ulps, c.allowance
            );
        }
        let failing: Vec<&CaseResult> = self.cases.iter().filter(|c| c.status != Status::Pass).collect();
        if !failing.is_empty() {
            let _ = writeln!(s, "\nfailing cases:");
            for c in failing {
                let why = match &c.status {
                    Status::Over => format!(
                        "value {} ulp, grad {} ulp > allowance {}",
                        c.value_ulps, c.grad_ulps, c.allowance
                    ),
                    Status::Missing => "missing from the results".into(),
                    Status::Invalid(m) => m.clone(),
                    Status::Pass => String::new(),
                };
                let _ = writeln!(s, "  {}: {why}", c.id);
            }
        }
        if !self.unknown.is_empty() {
            let _ = writeln!(
                s,
                "\n{} result ids match no vector (ignored): {:?}",
                self.unknown.len(),
                self.unknown
            );
        }
        let passed = self.cases.iter().filter(|c| c.status == Status::Pass).count();
        let _ = writeln!(
            s,
            "{} cases, {} passed, {} failed",
            self.cases.len(),
            passed,
            self.cases.len() - passed
        );
        s
    }
}
