//! The library behind the `entropic` binary: the reference oracle (one JSON
//! case in, one JSON result out) and `.npy` reading. The binary
//! (`src/main.rs`) adds the command line; the fuzz targets call these
//! functions directly.

pub mod check;
pub mod npy;
pub mod oracle;
pub mod reference;
pub mod spec;
pub mod vectors;

use std::path::Path;

use serde_json::{Map, Value, json};

/// The result of one input line: the case id and the result or the error.
pub type LineResult = (Value, Result<Map<String, Value>, oracle::CaseError>);

/// Parses one JSON Lines input line and evaluates it with `evaluate`; the
/// id is `"line N"` when absent or unreadable.
fn on_line(
    line: &str,
    lineno: usize,
    evaluate: impl FnOnce(&Map<String, Value>) -> Result<Map<String, Value>, oracle::CaseError>,
) -> LineResult {
    let default_id = json!(format!("line {lineno}"));
    let case = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(case)) => case,
        Ok(_) => {
            return (
                default_id,
                Err(oracle::CaseError::new("case", "expected a JSON object")),
            );
        }
        Err(e) => {
            return (
                default_id,
                Err(oracle::CaseError::new("case", format!("malformed JSON: {e}"))),
            );
        }
    };
    let id = case.get("id").cloned().unwrap_or(default_id);
    (id, evaluate(&case))
}

/// Parses and evaluates one JSON Lines input line. Returns the case id
/// (`"line N"` when absent) and the result object or the case error.
/// Never panics, whatever the input.
pub fn eval_line(line: &str, base: &Path, lineno: usize) -> LineResult {
    on_line(line, lineno, |case| oracle::evaluate(case, base))
}

/// As [`eval_line`], in reference mode: batch losses are evaluated with the
/// high-precision definitions and the certified, correctly rounded value is
/// printed for the case's dtype.
///
/// The arbitrary-precision library panics (reporting "out of memory")
/// rather than allocate an intermediate it cannot hold (a focal loss whose
/// logits differ by `2e12` did, before the reference learnt to round
/// arguments below `2^-(2p+2)` directly). Should that happen, it is caught
/// here and reported as a case error starting with [`REFERENCE_FAILED`]:
/// no certified value, and no crash of the caller.
pub fn eval_line_reference(line: &str, base: &Path, lineno: usize) -> LineResult {
    on_line(line, lineno, |case| without_panics(|| reference_case(case, base)))
}

/// Runs a reference evaluation, turning a panic of the arbitrary-precision
/// library into a case error starting with [`REFERENCE_FAILED`].
fn without_panics(
    f: impl FnOnce() -> Result<Map<String, Value>, oracle::CaseError>,
) -> Result<Map<String, Value>, oracle::CaseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(oracle::CaseError::new(
            "case",
            format!("{REFERENCE_FAILED} (an intermediate beyond the arbitrary-precision library's limits)"),
        ))
    })
}

/// The start of the message of a case the high-precision reference could
/// not evaluate (see [`eval_line_reference`]).
pub const REFERENCE_FAILED: &str = "reference: the high-precision evaluation failed";

fn reference_case(case: &Map<String, Value>, base: &Path) -> Result<Map<String, Value>, oracle::CaseError> {
    let loss = case.get("loss").and_then(Value::as_str).unwrap_or("");
    if !spec::BATCH_LOSSES.contains(&loss) {
        return Err(oracle::CaseError::new(
            "loss",
            format!(
                "reference mode supports the batch losses ({})",
                spec::BATCH_LOSSES.join(", ")
            ),
        ));
    }
    let dtype = match case.get("dtype").and_then(Value::as_str) {
        None | Some("f64" | "float64") => oracle::Dtype::F64,
        Some("f32" | "float32") => oracle::Dtype::F32,
        Some(other) => {
            return Err(oracle::CaseError::new(
                "dtype",
                format!("expected \"f32\" or \"f64\", found {other}"),
            ));
        }
    };
    let mut spec = spec::parse(loss, case, base)?;
    spec.case = reference::rounded_case(&spec.case, dtype);
    let r = reference::evaluate(&spec)?;
    let num = |x: &entropic_verify::precise::CorrectlyRounded| {
        let v = reference::pick(x, dtype);
        if v.is_finite() {
            json!(v)
        } else if v.is_nan() {
            json!("nan")
        } else if v > 0.0 {
            json!("inf")
        } else {
            json!("-inf")
        }
    };
    let mut m = Map::new();
    m.insert(
        "per_sample".into(),
        Value::Array(r.per_sample.iter().map(num).collect()),
    );
    m.insert("loss".into(), r.loss.as_ref().map_or(Value::Null, num));
    let g: Vec<Value> = r.grad.iter().map(num).collect();
    let grad = match spec.shape.as_slice() {
        [_, c] if *c > 0 => Value::Array(g.chunks(*c).map(|r| Value::Array(r.to_vec())).collect()),
        _ => Value::Array(g),
    };
    m.insert("grad".into(), grad);
    m.insert("reference".into(), json!("correctly rounded (256/512-bit certificate)"));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_reference_is_a_case_error() {
        let e = without_panics(|| panic!("out of memory")).unwrap_err();
        assert!(e.message.starts_with(REFERENCE_FAILED), "{e:?}");
        assert_eq!(e.field, "case");
        let ok = without_panics(|| Ok(Map::new()));
        assert!(ok.is_ok());
    }
}
