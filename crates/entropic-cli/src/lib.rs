//! The library behind the `entropic` binary: the reference oracle (one JSON
//! case in, one JSON result out) and `.npy` reading. The binary
//! (`src/main.rs`) adds the command line; the fuzz targets call these
//! functions directly.

pub mod npy;
pub mod oracle;

use std::path::Path;

use serde_json::{Map, Value, json};

/// Parses and evaluates one JSON Lines input line. Returns the case id
/// (`"line N"` when absent) and the result object or the case error.
/// Never panics, whatever the input.
pub fn eval_line(line: &str, base: &Path, lineno: usize) -> (Value, Result<Map<String, Value>, oracle::CaseError>) {
    let default_id = json!(format!("line {lineno}"));
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return (default_id, Err(oracle::CaseError::new("case", format!("malformed JSON: {e}")))),
    };
    let Value::Object(case) = value else {
        return (default_id, Err(oracle::CaseError::new("case", "expected a JSON object")));
    };
    let id = case.get("id").cloned().unwrap_or(default_id);
    (id, oracle::evaluate(&case, base))
}
