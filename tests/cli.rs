//! End-to-end tests of the `entropic` binary: outputs, errors and exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_entropic"))
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn eval_stdin(input: &str) -> Output {
    let mut child = bin()
        .arg("eval")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn entropic");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn eval_file_with_npy_inputs_and_a_bad_case() {
    let out = bin().arg("eval").arg(data("cases.jsonl")).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "a bad case makes the exit code 1");
    let rs = lines(&out);
    assert_eq!(rs.len(), 4, "one result per case, in order");
    // ce-1: 0.9·(−ln a_2) + (0.1/3)·Σ(−ln a_c), computed independently here.
    let z = [1.0f64, 2.0, 3.0];
    let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
    let expected = 0.9 * (lse - 3.0) + 0.1 / 3.0 * z.iter().map(|v| lse - v).sum::<f64>();
    assert_eq!(rs[0]["id"], "ce-1");
    assert!((f(&rs[0]["loss"]) - expected).abs() <= 4.0 * f64::EPSILON * expected);
    let grad: Vec<f64> = rs[0]["grad"][0]
        .as_array()
        .expect("grad matrix")
        .iter()
        .map(f)
        .collect();
    assert!(grad.iter().sum::<f64>().abs() < 1e-15);
    // ce-npy: per-sample losses of the .npy rows; row 2 is ln 3 exactly.
    assert_eq!(rs[1]["loss"], Value::Null);
    let per: Vec<f64> = rs[1]["per_sample"]
        .as_array()
        .expect("per_sample")
        .iter()
        .map(f)
        .collect();
    assert!((per[0] - (lse - 3.0)).abs() < 1e-15);
    assert_eq!(per[1], 3f64.ln());
    // bad-class: an error record naming the field and line; the others unaffected.
    assert_eq!(rs[2]["id"], "bad-class");
    assert_eq!(rs[2]["field"], "target");
    assert_eq!(rs[2]["line"], 3);
    assert!(rs[2]["error"].as_str().expect("message").contains("out of range"));
    // ce-f32: ln 2 in f32.
    assert_eq!(f(&rs[3]["loss"]) as f32, std::f32::consts::LN_2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one stderr line per bad case: {err}");
    assert!(
        err.contains("line 3") && err.contains("bad-class") && err.contains("target"),
        "{err}"
    );
}

#[test]
fn malformed_inputs_give_one_line_errors_and_no_panic() {
    for (input, field) in [
        ("not json", "case"),
        ("[1, 2]", "case"),
        (r#"{"id":1,"loss":"nope","logits":[[1]]}"#, "loss"),
        (
            r#"{"id":2,"loss":"softmax_cross_entropy","logits":[[1,2],[3]],"target":[0,0]}"#,
            "logits[1]",
        ),
        (
            r#"{"id":3,"loss":"softmax_cross_entropy","logits":[[1,"x"]],"target":[0]}"#,
            "logits[0][1]",
        ),
        (
            r#"{"id":4,"loss":"softmax_cross_entropy","logits":[[1,2]],"target":[0],"params":{"reduction":"avg"}}"#,
            "params.reduction",
        ),
        (
            r#"{"id":5,"loss":"softmax_cross_entropy","logits":[[1,2]],"target":[0],"params":{"label_smoothing":2}}"#,
            "label_smoothing",
        ),
        (
            r#"{"id":6,"loss":"softmax_cross_entropy","logits":[[1,"nan"]],"target":[0]}"#,
            "logits",
        ),
        (r#"{"id":7,"loss":"softmax_cross_entropy","target":[0]}"#, "logits"),
        (
            r#"{"id":8,"loss":"softmax_cross_entropy","logits":{"npy":"missing.npy"},"target":[0]}"#,
            "logits",
        ),
        (r#"{"id":9,"loss":"entropy","p":[0.5,0.6]}"#, "p"),
        (
            r#"{"id":10,"loss":"softmax_cross_entropy","logits":[[1,2]],"target":[0],"dtype":"f16"}"#,
            "dtype",
        ),
    ] {
        let out = eval_stdin(&format!("{input}\n"));
        assert_eq!(out.status.code(), Some(1), "{input}");
        let rs = lines(&out);
        assert_eq!(rs.len(), 1, "{input}");
        assert_eq!(rs[0]["field"], field, "{input}: {}", rs[0]);
        assert_eq!(rs[0]["line"], 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{input}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn npy_errors_name_the_file() {
    let dir = data("");
    for (file, needle) in [("truncated.npy", "truncated"), ("complex.npy", "unsupported dtype")] {
        let input =
            format!(r#"{{"id":"n","loss":"softmax_cross_entropy","logits":{{"npy":"{file}"}},"target":[0,0]}}"#);
        let mut child = bin()
            .arg("eval")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        let rs = lines(&out);
        let msg = rs[0]["error"].as_str().unwrap_or_default();
        assert!(msg.contains(file) && msg.contains(needle), "{msg}");
    }
}

#[test]
fn verify_prints_the_report_and_exits_zero() {
    let out = bin().arg("verify").output().expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(table.contains("kl.gibbs") && table.contains("grad.ce.classes.plain.mean.grad"));
    assert!(table.lines().last().unwrap_or_default().contains("0 failed"));
}

#[test]
fn help_has_examples() {
    for sub in ["verify", "eval"] {
        let out = bin().args([sub, "--help"]).output().expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("Example"), "{sub}: {text}");
    }
}

#[test]
fn tempered_oracle_reproduces_the_published_bi_tempered_values() {
    // Google's reference test case (t1 = 0.5, t2 = 1.5): [0.02301914, 0.18972909, 0.93874922];
    // the reference stops after 5 iterations, so agreement is to its ~1e-6 truncation.
    let out = eval_stdin(concat!(
        r#"{"id":"bt","loss":"bi_tempered_logistic_loss","logits":[[-0.5,0.1,2],[0.1,1.5,-5],[4,-3,-6]],"#,
        r#""target":[[0.2,0.3,0.5],[0.6,0.3,0.1],[0.2,0.8,0]],"params":{"t1":0.5,"t2":1.5,"reduction":"none"}}"#,
        "\n",
        r#"{"id":"lt","loss":"log_t","x":[0,1,4],"params":{"t":0.5}}"#,
        "\n"
    ));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rs = lines(&out);
    let per: Vec<f64> = rs[0]["per_sample"]
        .as_array()
        .expect("per_sample")
        .iter()
        .map(f)
        .collect();
    for (v, published) in per.iter().zip([0.02301914, 0.18972909, 0.93874922]) {
        assert!((v - published).abs() < 1e-6, "{per:?}");
    }
    assert_eq!(rs[1]["value"], serde_json::json!([-2.0, 0.0, 2.0]));
    assert_eq!(rs[1]["grad"], serde_json::json!(["inf", 1.0, 0.5]));
}

/// Regression (cargo fuzz, npy_parse): a format-3 header claiming 4 GiB made
/// the parser allocate it; now it is a one-line error.
#[test]
fn npy_with_a_huge_header_length_is_an_error_not_an_allocation() {
    let mut bytes = b"\x93NUMPY\x03\x00".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(b"{'descr': '<f8'}");
    let err = entropic_cli::npy::parse(&bytes).expect_err("rejected");
    assert!(err.to_string().contains("truncated"), "{err}");
}
