//! The committed conformance vectors regenerate byte-identically, and the
//! production f64 and f32 kernels pass them.

use std::path::PathBuf;

use entropic_cli::check::{Status, check};
use entropic_cli::oracle::Dtype;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../verification/vectors")
}

fn committed() -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("verification/vectors exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("readable")
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn committed_vectors_are_fresh() {
    let files = entropic_cli::vectors::render(|_| {}).expect("every reference certifies");
    for (name, text) in &files {
        let path = vectors_dir().join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == *text,
            "{} is stale: run `cargo run --release -p entropic-cli -- vectors --out verification/vectors/`",
            path.display()
        );
    }
    let names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    for entry in std::fs::read_dir(vectors_dir()).expect("dir").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        assert!(names.contains(&&name), "orphan file {name} in verification/vectors");
    }
}

fn run_ours(vectors: &[Value], dtype: Dtype) -> Vec<Value> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut case = v.as_object().expect("object").clone();
            case.remove("expected");
            case.remove("allowance_ulps");
            if dtype == Dtype::F32 {
                case.insert("dtype".into(), Value::from("f32"));
            }
            let line = Value::Object(case).to_string();
            let (id, r) = entropic_cli::eval_line(&line, std::path::Path::new("."), i + 1);
            let mut m = r.unwrap_or_else(|e| panic!("case {id}: {}", e.message));
            m.insert("id".into(), id);
            Value::Object(m)
        })
        .collect()
}

#[test]
fn production_kernels_conform_in_f64_and_f32() {
    let vectors = committed();
    assert!(vectors.len() > 50, "too few vectors");
    for dtype in [Dtype::F64, Dtype::F32] {
        let report = check(&run_ours(&vectors, dtype), &vectors, dtype);
        println!("{dtype:?}\n{}", report.to_table());
        assert!(report.passed(), "{dtype:?}:\n{}", report.to_table());
    }
}

#[test]
fn check_rejects_a_wrong_result() {
    let vectors = committed();
    let mut results = run_ours(&vectors, Dtype::F64);
    // Perturb one loss by 1e-12 relative (~4500 ulps) and drop another case.
    let victim = results.iter_mut().find(|r| r["loss"].is_f64()).expect("a reduced loss");
    let v = victim["loss"].as_f64().expect("number");
    victim["loss"] = Value::from(v * (1.0 + 1e-12));
    let dropped = results.pop().expect("non-empty");
    let report = check(&results, &vectors, Dtype::F64);
    assert!(!report.passed());
    assert!(report.cases.iter().any(|c| c.status == Status::Over));
    assert!(
        report
            .cases
            .iter()
            .any(|c| c.status == Status::Missing && Some(c.id.as_str()) == dropped["id"].as_str())
    );
    // A NaN where a number is expected is reported, not skipped.
    let mut results = run_ours(&vectors, Dtype::F64);
    results[0]["grad"] = serde_json::json!([["nan"]]);
    let report = check(&results, &vectors, Dtype::F64);
    assert!(matches!(report.cases[0].status, Status::Invalid(_)));
}

/// The oracle reads every f64 exactly (serde_json's `float_roundtrip`): a
/// one-ulp misparse of logits near 1000 once moved a gradient by 1e-13.
#[test]
fn json_numbers_parse_exactly() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = f64::from_bits(x);
        if !v.is_finite() {
            continue;
        }
        let parsed: Value = serde_json::from_str(&format!("{v:?}")).expect("JSON number");
        assert_eq!(parsed.as_f64().map(f64::to_bits), Some(v.to_bits()), "{v:?}");
    }
}
