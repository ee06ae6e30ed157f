//! The finiteness contract of issue #8, checked against the certified
//! reference: for finite inputs (and `−∞` masks where a loss accepts them),
//! every value and gradient entry of the fast kernels, in `f32` and `f64`, is
//! finite exactly where the correctly rounded exact value is finite, and
//! `+∞` exactly where it is `+∞` — never NaN, never a spurious overflow, never
//! a spurious `−∞`.
//!
//! Inputs are property-generated over the whole floating-point range
//! (|x| up to `f64::MAX`, subnormals, zeros); the reference is the
//! high-precision evaluation of `entropic eval --reference` (dashu-float),
//! rounded to the case's dtype. Default: 48 cases per loss;
//! `ENTROPIC_EXTENSIVE=1` runs 1 000.

use std::path::Path;

use std::cell::Cell;

use entropic_cli::{eval_line, eval_line_reference};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

/// A finite value from anywhere in the range, biased to the interesting
/// magnitudes; `mask` adds `−∞` (a masked class) for the losses that take it.
fn value(mask: bool) -> BoxedStrategy<f64> {
    let finite = prop_oneof![
        4 => -60.0f64..60.0,
        2 => -1e4f64..1e4,
        2 => proptest::num::f64::NORMAL,
        1 => proptest::num::f64::SUBNORMAL,
        1 => Just(f64::MAX),
        1 => Just(-f64::MAX),
        1 => Just(0.0),
    ];
    if mask {
        prop_oneof![8 => finite, 1 => Just(f64::NEG_INFINITY)].boxed()
    } else {
        finite.boxed()
    }
}

fn label() -> impl Strategy<Value = f64> {
    prop_oneof![2 => Just(0.0), 2 => Just(1.0), 1 => 0.0f64..=1.0, 1 => proptest::num::f64::SUBNORMAL.prop_map(f64::abs)]
}

/// Labels of one case: every other case hard labels only (0 or 1), where
/// the `f32` binary cross-entropy and sigmoid focal kernels take their own
/// path (a soft label anywhere in a group of rows sends it to `f64`).
fn labels(len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        proptest::collection::vec(label(), len),
        proptest::collection::vec(prop_oneof![Just(0.0), Just(1.0)], len),
    ]
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

fn matrix(xs: &[f64], c: usize) -> Value {
    Value::Array(
        xs.chunks(c)
            .map(|r| Value::Array(r.iter().map(|&x| num(x)).collect()))
            .collect(),
    )
}

/// Reads a result number (`"inf"`, `"-inf"`, `"nan"` or a JSON number).
fn read(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::String(_) => f64::NAN,
        v => v.as_f64().unwrap_or(f64::NAN),
    }
}

fn flatten(v: Option<&Value>) -> Vec<f64> {
    match v {
        Some(Value::Array(a)) => a.iter().flat_map(|x| flatten(Some(x))).collect(),
        Some(Value::Null) | None => vec![],
        Some(x) => vec![read(x)],
    }
}

/// Evaluates `case` with the fast kernel and the certified reference and
/// checks the contract entry by entry. Cases the reference rejects (e.g. an
/// all-masked row) must be rejected by the kernel too.
fn check(case: &Map<String, Value>) -> Result<(), TestCaseError> {
    let line = Value::Object(case.clone()).to_string();
    if std::env::var_os("ENTROPIC_TRACE").is_some() {
        eprintln!("case {line}");
    }
    let (_, fast) = eval_line(&line, Path::new("."), 1);
    let (_, exact) = eval_line_reference(&line, Path::new("."), 1);
    let (fast, exact) = match (fast, exact) {
        (Ok(f), Ok(e)) => (f, e),
        (Err(_), Err(_)) => return Ok(()),
        // The reference could not certify the rounding at 256/512 bits
        // (a value within ~2^-200 of a rounding boundary): no verdict.
        // Also: an intermediate beyond dashu's exponent range (|ln x| > 6.4e18).
        (_, Err(e)) if e.message.contains("not certain") => {
            UNVERIFIED.set(UNVERIFIED.get() + 1);
            return Ok(());
        }
        // The arbitrary-precision evaluation itself failed (reported, not
        // a crash; see `entropic_cli`'s `a_panicking_reference_is_a_case_error`).
        (_, Err(e)) if e.message.starts_with(entropic_cli::REFERENCE_FAILED) => {
            UNVERIFIED.set(UNVERIFIED.get() + 1);
            return Ok(());
        }
        (f, e) => {
            return Err(TestCaseError::fail(format!(
                "kernel and reference disagree on validity: {f:?} vs {e:?} for {line}"
            )));
        }
    };
    compare(&fast, &exact, &line)
}

/// An exact value within this many ulps of the format's largest finite value
/// may come out as that sign's infinity, and one that rounds to an infinity
/// may come out finite but as large: the kernels' error (up to 16 ulp on
/// the conformance vectors, `accuracy.md`) cannot decide on which side of
/// the overflow threshold such a value lies. Found by the extensive run: a
/// smoothed CE row at ±f64::MAX whose exact loss is 0.37 ulp below the
/// threshold, summed by the kernel to +∞.
const OVERFLOW_THRESHOLD_ULPS: f64 = 16.0;

/// Whether `kernel` and `exact` (rounded to the case's format) straddle the
/// overflow threshold within [`OVERFLOW_THRESHOLD_ULPS`], with the same sign.
fn straddles_overflow(kernel: f64, exact: f64, f32_case: bool) -> bool {
    let (max, eps) = if f32_case {
        (f64::from(f32::MAX), f64::from(f32::EPSILON))
    } else {
        (f64::MAX, f64::EPSILON)
    };
    let near = |v: f64| v.is_finite() && v.abs() >= max * (1.0 - OVERFLOW_THRESHOLD_ULPS * eps);
    kernel.is_finite() != exact.is_finite() && kernel.signum() == exact.signum() && (near(kernel) || near(exact))
}

/// The contract, entry by entry: no NaN; finite exactly where the exact
/// value (rounded to the dtype) is finite, except across the overflow
/// threshold ([`straddles_overflow`]); an infinity only where the exact
/// value is that infinity.
fn compare(fast: &Map<String, Value>, exact: &Map<String, Value>, line: &str) -> Result<(), TestCaseError> {
    let f32_case = line.contains(r#""dtype":"f32""#);
    for field in ["per_sample", "loss", "grad"] {
        let (f, e) = (flatten(fast.get(field)), flatten(exact.get(field)));
        prop_assert_eq!(f.len(), e.len(), "{} lengths for {}", field, line);
        for (i, (&f, &e)) in f.iter().zip(&e).enumerate() {
            prop_assert!(!f.is_nan(), "{}[{}] is NaN (exact {}) for {}", field, i, e, line);
            prop_assert!(
                (f.is_finite() == e.is_finite() && (f.is_finite() || f == e)) || straddles_overflow(f, e, f32_case),
                "{}[{}] = {} but the exact value rounds to {} for {}",
                field,
                i,
                f,
                e,
                line
            );
        }
    }
    Ok(())
}

/// The comparison can fail: a NaN, a spurious overflow, a missing +∞ and an
/// infinity of the wrong sign are each rejected.
#[test]
fn the_contract_rejects_nan_and_wrong_infinities() {
    let exact = json!({"per_sample": [1.0, "inf"], "loss": null, "grad": [[0.5, -0.5]]});
    let exact = exact.as_object().unwrap();
    assert!(compare(exact, exact, "").is_ok());
    for bad in [
        json!({"per_sample": ["nan", "inf"], "loss": null, "grad": [[0.5, -0.5]]}),
        json!({"per_sample": ["inf", "inf"], "loss": null, "grad": [[0.5, -0.5]]}),
        json!({"per_sample": [1.0, 1e308], "loss": null, "grad": [[0.5, -0.5]]}),
        json!({"per_sample": [1.0, "-inf"], "loss": null, "grad": [[0.5, -0.5]]}),
        json!({"per_sample": [1.0, "inf"], "loss": null, "grad": [[0.5, "-inf"]]}),
    ] {
        assert!(compare(bad.as_object().unwrap(), exact, "").is_err(), "{bad}");
    }
    // Across the overflow threshold: within 16 ulp of f64::MAX either side
    // is accepted; 17 ulp below it, or the wrong sign, is not.
    let at = |v: f64| json!({"per_sample": [num(v)], "loss": null, "grad": []});
    let below = |k: f64| f64::MAX * (1.0 - k * f64::EPSILON);
    let inf = at(f64::INFINITY);
    assert!(compare(inf.as_object().unwrap(), at(below(15.0)).as_object().unwrap(), "").is_ok());
    assert!(compare(at(below(15.0)).as_object().unwrap(), inf.as_object().unwrap(), "").is_ok());
    assert!(compare(inf.as_object().unwrap(), at(below(17.0)).as_object().unwrap(), "").is_err());
    assert!(
        compare(
            at(f64::NEG_INFINITY).as_object().unwrap(),
            at(below(1.0)).as_object().unwrap(),
            ""
        )
        .is_err()
    );
    // f32 cases use f32::MAX: f64::MAX-sized values are far from it.
    let f32_line = r#"{"dtype":"f32"}"#;
    let near_f32 = at(f64::from(f32::MAX));
    assert!(compare(inf.as_object().unwrap(), near_f32.as_object().unwrap(), f32_line).is_ok());
    assert!(compare(inf.as_object().unwrap(), near_f32.as_object().unwrap(), "").is_err());
}

thread_local! {
    /// Cases without a verdict (no certified reference) on this thread (a
    /// proptest run stays on its test's thread); see [`run`].
    static UNVERIFIED: Cell<usize> = const { Cell::new(0) };
}

/// At most this fraction of a run's cases may lack a certified reference:
/// a run that mostly skips would pass without testing anything. Measured:
/// every configuration stays below 3 % except the bi-tempered loss at
/// `t1 = 1.5 > t2 = 1`, 10 of 48 (21 %) by default and 240 of 1 000 (24 %)
/// with `ENTROPIC_EXTENSIVE=1` — rows with logit gaps beyond about 1e19,
/// whose `p^{1−t1}` leaves dashu's exponent range. A third leaves room for
/// that configuration and still fails a run that mostly skips.
const MAX_UNVERIFIED_FRACTION: f64 = 1.0 / 3.0;

fn cases() -> u32 {
    if std::env::var("ENTROPIC_EXTENSIVE").is_ok_and(|v| v == "1") {
        1000
    } else {
        48
    }
}

/// Runs `strategy`'s cases through [`check`] with a fixed seed (printed on
/// failure by proptest, reproducible).
fn run(name: &str, strategy: impl Strategy<Value = Map<String, Value>>) {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(2026),
        // A failure is reported after a bounded shrink (each step re-runs
        // the high-precision reference).
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let verified = Cell::new(0usize);
    let result = runner.run(&strategy, |case| {
        let before = UNVERIFIED.get();
        check(&case)?;
        if UNVERIFIED.get() == before {
            verified.set(verified.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let verified = verified.get();
    let total = cases() as usize;
    eprintln!("{name}: {verified} of {total} cases verified against the certified reference");
    assert!(
        (total - verified.min(total)) as f64 <= MAX_UNVERIFIED_FRACTION * total as f64,
        "{name}: only {verified} of {total} cases had a certified reference"
    );
}

fn dtype() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("f32"), Just("f64")]
}

fn shape() -> impl Strategy<Value = (usize, usize)> {
    (1usize..4, 1usize..6)
}

#[test]
fn softmax_cross_entropy_is_finite_exactly_where_exact() {
    let s = (shape(), dtype(), 0u8..2).prop_flat_map(|((n, c), dt, smooth)| {
        (
            proptest::collection::vec(value(true), n * c),
            proptest::collection::vec(0..c, n),
            Just((n, c, dt, smooth)),
        )
            .prop_map(|(z, y, (_, c, dt, smooth))| {
                let mut case = Map::new();
                case.insert("loss".into(), json!("softmax_cross_entropy"));
                case.insert("dtype".into(), json!(dt));
                case.insert("logits".into(), matrix(&z, c));
                case.insert("target".into(), json!(y));
                case.insert(
                    "params".into(),
                    json!({"reduction": "none", "label_smoothing": if smooth == 1 { 0.1 } else { 0.0 }}),
                );
                case
            })
    });
    run("softmax_cross_entropy", s);
}

/// The element-wise losses and the binary bi-tempered loss: logits and
/// labels of the same shape.
fn elementwise(loss: &'static str, params: Value, mask: bool) -> impl Strategy<Value = Map<String, Value>> {
    (shape(), dtype()).prop_flat_map(move |((n, c), dt)| {
        let params = params.clone();
        (proptest::collection::vec(value(mask), n * c), labels(n * c)).prop_map(move |(z, y)| {
            let mut case = Map::new();
            case.insert("loss".into(), json!(loss));
            case.insert("dtype".into(), json!(dt));
            case.insert("logits".into(), matrix(&z, c));
            case.insert("target".into(), matrix(&y, c));
            case.insert("params".into(), params.clone());
            case
        })
    })
}

#[test]
fn binary_cross_entropy_is_finite_exactly_where_exact() {
    run(
        "binary_cross_entropy_with_logits",
        elementwise("binary_cross_entropy_with_logits", json!({"reduction": "none"}), false),
    );
}

#[test]
fn sigmoid_focal_loss_is_finite_exactly_where_exact() {
    for gamma in [0.0, 0.5, 2.0] {
        run(
            "sigmoid_focal_loss",
            elementwise(
                "sigmoid_focal_loss",
                json!({"reduction": "none", "gamma": gamma, "alpha": 0.25}),
                false,
            ),
        );
    }
}

#[test]
fn bi_tempered_binary_is_finite_exactly_where_exact() {
    for (t1, t2) in [(0.8, 2.0), (0.5, 1.5), (1.0, 1.0)] {
        run(
            "bi_tempered_binary_logistic_loss",
            elementwise(
                "bi_tempered_binary_logistic_loss",
                json!({"reduction": "none", "t1": t1, "t2": t2}),
                false,
            ),
        );
    }
}

#[test]
fn class_target_losses_are_finite_exactly_where_exact() {
    for (loss, params) in [
        ("softmax_focal_loss", json!({"reduction": "none", "gamma": 0.5})),
        ("softmax_focal_loss", json!({"reduction": "none", "gamma": 2.0})),
        (
            "bi_tempered_logistic_loss",
            json!({"reduction": "none", "t1": 0.8, "t2": 1.2}),
        ),
        (
            "bi_tempered_logistic_loss",
            json!({"reduction": "none", "t1": 1.0, "t2": 0.5}),
        ),
        // Unbounded loss (t1 ≥ 1) with heavy or exponential tails: logit
        // gaps beyond f64::MAX leave ln p finite (t2 > 1) or only its half
        // finite (t2 = 1); smoothing gives the far classes small labels.
        (
            "bi_tempered_logistic_loss",
            json!({"reduction": "none", "t1": 1.0, "t2": 1.1, "label_smoothing": 0.1}),
        ),
        (
            "bi_tempered_logistic_loss",
            json!({"reduction": "none", "t1": 1.0, "t2": 1.0, "label_smoothing": 0.2}),
        ),
        (
            "bi_tempered_logistic_loss",
            json!({"reduction": "none", "t1": 1.5, "t2": 1.0}),
        ),
        (
            "bi_tempered_logistic_loss",
            json!({"reduction": "none", "t1": 1.9, "t2": 1.1}),
        ),
    ] {
        let s = (shape(), dtype()).prop_flat_map(move |((n, c), dt)| {
            let params = params.clone();
            (
                proptest::collection::vec(value(false), n * c),
                proptest::collection::vec(0..c, n),
            )
                .prop_map(move |(z, y)| {
                    let mut case = Map::new();
                    case.insert("loss".into(), json!(loss));
                    case.insert("dtype".into(), json!(dt));
                    case.insert("logits".into(), matrix(&z, c));
                    case.insert("target".into(), json!(y));
                    case.insert("params".into(), params.clone());
                    case
                })
        });
        run(loss, s);
    }
}

/// Kernel vs certified reference for gradients of size `e^{600}` and more.
///
/// Reason for the bound: with `t2 < t1` and a heavy tail (`t2 > 1`) the
/// gradient carries the factor `p^{t2 − t1} = e^{(t1 − t2)·|ln p|}`, which
/// turns a relative error δ of `ln p` (a few ε, `|ln p| ≈ 1300` here) into
/// `(t1 − t2)·|ln p|·δ ≈ 640·4ε ≈ 6e-13` of the result; the loss term
/// `p^{1 − t1}` likewise (factor `(t1 − 1)·|ln p|`).
const HEAVY_TAIL_REL: f64 = 2e-12;

#[test]
fn heavy_tail_gradients_beyond_e600_match_the_certified_reference() {
    // Two classes give gradients (g, −g); the three-class row (soft labels)
    // has entries of different sizes in the rescaled range (e^620 and
    // e^613), so the un-scaling `exp(shift + ln|v|)` is checked too.
    let three = r#"{"loss":"bi_tempered_logistic_loss","logits":[[0.0,-5.5e34,-2e34]],"target":[[0.0,0.5,0.5]],"params":{"t1":1.9,"t2":1.1,"reduction":"sum"}}"#;
    let two = ["2e7", "4.4e7", "1e8"].map(|a| {
        format!(
            r#"{{"loss":"bi_tempered_logistic_loss","logits":[[0.0,-{a}]],"target":[1],"params":{{"t1":1.5,"t2":1.01,"reduction":"sum"}}}}"#
        )
    });
    for line in two.iter().map(String::as_str).chain([three]) {
        let fast = eval_line(line, Path::new("."), 1).1.unwrap();
        let exact = eval_line_reference(line, Path::new("."), 1).1.unwrap();
        let (f, e) = (flatten(fast.get("grad")), flatten(exact.get("grad")));
        assert!(
            e.iter().any(|g| g.abs() > 1e250),
            "the case must reach gradients beyond e^575: {e:?}"
        );
        for field in ["per_sample", "grad"] {
            let (f, e) = (flatten(fast.get(field)), flatten(exact.get(field)));
            for (a, b) in f.iter().zip(&e) {
                assert!(
                    (a - b).abs() <= HEAVY_TAIL_REL * b.abs(),
                    "{field}: {a} vs exact {b} for {line}"
                );
            }
        }
        assert_eq!(f.len(), if line == three { 3 } else { 2 });
    }
}

/// A probability below the `f64` range (`p ≈ 4e-348`: heavy tail `t2 = 1.1`,
/// a logit gap of 5.5e35). Unlabelled, its loss term `p^{2−t1}/(2−t1)` and
/// gradient `≈ p^{t2−t1+1}` are still representable (1.8e-34, 3.3e-70; the
/// kernel gave a gradient of 0). Labelled, the loss overflows to +∞ but the
/// gradient `≈ −p^{t2−t1}` (8.4e277) does not (the reference's reduction
/// replaced the whole sum by a derivative-free +∞ and reported 0). Same
/// tolerance as above: `|ln p| ≈ 800`, factors `|t2 − t1| = 0.8`.
#[test]
fn underflowing_probabilities_keep_their_loss_terms_and_gradients() {
    for (label, min_grad) in [(0, 1e-70), (1, 1e277)] {
        let line = format!(
            r#"{{"loss":"bi_tempered_logistic_loss","logits":[[0.0,-5.5e35]],"target":[{label}],"params":{{"t1":1.9,"t2":1.1,"reduction":"sum"}}}}"#
        );
        let fast = eval_line(&line, Path::new("."), 1).1.unwrap();
        let exact = eval_line_reference(&line, Path::new("."), 1).1.unwrap();
        for field in ["per_sample", "grad"] {
            let (f, e) = (flatten(fast.get(field)), flatten(exact.get(field)));
            assert_eq!(f.len(), e.len());
            for (a, b) in f.iter().zip(&e) {
                assert!(
                    a == b || (a - b).abs() <= HEAVY_TAIL_REL * b.abs(),
                    "{field}: {a} vs exact {b} for {line}"
                );
            }
        }
        let g = flatten(exact.get("grad"));
        assert!(
            g.iter().all(|v| v.abs() > min_grad),
            "label {label}: exact gradient {g:?}"
        );
    }
}

/// Found by the extensive run (third session): the reference evaluation of a
/// softmax CE row with a logit gap of 4e13 grew past 19 GB (dashu compared
/// `ln_1p`'s argument `e^{-4e13}` with 1 by shifting it 5.8e13 bits). Now
/// `exp`, `exp_m1` and `ln_1p` of arguments below `2^-(2p+2)` return their
/// correctly rounded values directly; the case is certified and agrees with
/// the kernel.
#[test]
fn reference_of_a_huge_logit_gap_is_bounded_and_agrees() {
    let line = r#"{"loss":"softmax_cross_entropy","logits":[[34.94348732707237,40064978349588.93,"-inf",25.239825762473558],[34.9,40064978349588.93,-1.0,25.2]],"target":[3,1],"params":{"reduction":"none","label_smoothing":0.1}}"#;
    let exact = eval_line_reference(line, Path::new("."), 1).1.unwrap();
    let fast = eval_line(line, Path::new("."), 1).1.unwrap();
    for field in ["per_sample", "grad"] {
        assert_eq!(flatten(fast.get(field)), flatten(exact.get(field)), "{field}");
    }
}

/// Found by the extensive run (second session): the reference evaluation of
/// a softmax focal loss with logits `(43.2, 2.1e12)` made the
/// arbitrary-precision library panic ("out of memory": `ln_1p(e^{-2.1e12})`
/// compared its argument with 1 at a common exponent), which crashed
/// `entropic eval --reference`; the panic became a case error. Since the
/// third session's guard for arguments below `2^-(2p+2)` the case is
/// certified, and agrees with the kernel bit for bit. (The panic-to-error
/// path stays, tested in `entropic_cli`'s unit tests.)
#[test]
fn former_reference_failure_is_now_certified_and_agrees() {
    let line = r#"{"loss":"softmax_focal_loss","logits":[[43.248000303300884,2149037349021.507]],"target":[0],"params":{"reduction":"none","gamma":0.5}}"#;
    let exact = eval_line_reference(line, Path::new("."), 1).1.unwrap();
    let fast = eval_line(line, Path::new("."), 1).1.unwrap();
    for field in ["per_sample", "grad"] {
        assert_eq!(flatten(fast.get(field)), flatten(exact.get(field)), "{field}");
    }
}

/// Kernel against the certified reference for one case, entry by entry,
/// within `rel` (relative), equal infinities, and no NaN.
fn agrees_with_reference(line: &str, rel: f64) -> Map<String, Value> {
    let fast = eval_line(line, Path::new("."), 1).1.unwrap();
    let exact = eval_line_reference(line, Path::new("."), 1).1.unwrap();
    for field in ["per_sample", "grad"] {
        let (f, e) = (flatten(fast.get(field)), flatten(exact.get(field)));
        assert_eq!(f.len(), e.len(), "{field} for {line}");
        for (a, b) in f.iter().zip(&e) {
            assert!(
                a == b || (a - b).abs() <= rel * b.abs(),
                "{field}: {a} vs exact {b} for {line}"
            );
        }
    }
    exact
}

/// Logit *differences* beyond `f64::MAX` (the last gap of the fourth
/// session): `z − max z` overflows to `−∞` although the logit is finite.
/// With a heavy tail (`t2 > 1`) the probability is `e^{−7075.9}` (not 0)
/// and the loss finite; at `t2 = 1` `ln p ≈ −2e308` is beyond the range but
/// a small label keeps the loss finite (`0.1·2e308`). The kernel gave `+∞`
/// and zero gradients in every case; the reference gave `+∞` too (its
/// generic code took the finite −2e308 for a masked `−∞`). Same tolerance
/// as above: `|ln p|` up to 7 076 times `|t2 − t1| ≤ 1.5`.
#[test]
fn logit_gaps_beyond_the_range_keep_finite_bi_tempered_losses() {
    let cases = [
        (r#"[[1e308,-1e308]]"#, "[1]", "1.0", "1.1"),
        (r#"[[1e308,-1e308]]"#, "[[0.9,0.1]]", "1.0", "1.0"),
        (
            r#"[[1.7976931348623157e308,-1e308,-1.7976931348623157e308]]"#,
            "[[0.2,0.0,0.1]]",
            "1.0",
            "1.0",
        ),
        (r#"[[1.7e308,-1.7e308,0]]"#, "[1]", "1.0", "2.5"),
        (
            r#"[[1.7976931348623157e308,-1e308,-1.7976931348623157e308]]"#,
            "[2]",
            "1.9",
            "1.5",
        ),
    ];
    for (logits, target, t1, t2) in cases {
        let line = format!(
            r#"{{"loss":"bi_tempered_logistic_loss","logits":{logits},"target":{target},"params":{{"t1":{t1},"t2":{t2},"reduction":"none"}}}}"#
        );
        let exact = agrees_with_reference(&line, HEAVY_TAIL_REL);
        let loss = flatten(exact.get("per_sample"))[0];
        let grad = flatten(exact.get("grad"));
        assert!(
            (loss.is_finite() && loss > 100.0) || grad.iter().any(|g| g.abs() > 1e200),
            "the case must have a finite loss beyond the old +∞ or a huge gradient: {loss}, {grad:?} for {line}"
        );
    }
}

/// An escort weight below the range (`ẽ ≈ e^{−800}`) times a sum beyond it
/// (`Σ ≈ e^{1000}`) is an ordinary gradient entry (6.1e86): the kernel gave
/// 0 (it formed the escort first). Now the product is formed from its log.
#[test]
fn an_underflowing_escort_times_a_huge_sum_keeps_its_gradient() {
    for (gap, min) in [("4e32", 1e86), ("4e33", 1e75)] {
        let line = format!(
            r#"{{"loss":"bi_tempered_logistic_loss","logits":[[0.0,-{gap},-2e55]],"target":[2],"params":{{"t1":1.9,"t2":1.1,"reduction":"sum"}}}}"#
        );
        let exact = agrees_with_reference(&line, HEAVY_TAIL_REL);
        assert!(flatten(exact.get("grad"))[1] > min, "{exact:?}");
    }
}

/// Where even the reference cannot go: at `t1 > t2 = 1` and a logit gap of
/// `2·f64::MAX` the gradient multiplies `e^{−f64::MAX}` by `e^{+f64::MAX}`,
/// beyond dashu's exponent range, so the reference reports no certificate
/// (before it did, with 0 for the middle entry). By hand, for logits
/// `(M, 0, −M)`, label 2, `t = (1.5, 1)`: `p = (1, e^{−M}, e^{−2M})`,
/// `A_2 = −p_2^{−1/2} = −e^{M}` dominates `Σ A`, so
/// `g_0 = −ẽ_0·Σ = +∞`, `g_2 = A_2 = −∞` and `g_1 = A_1 − ẽ_1·Σ
/// = e^{−M/2} + e^{−M}·e^{M} = 1` (to within `e^{−M/2}`).
#[test]
fn beyond_the_reference_range_the_gradient_follows_the_analysis() {
    let m = f64::MAX;
    let line = format!(
        r#"{{"loss":"bi_tempered_logistic_loss","logits":[[{m:e},0.0,-{m:e}]],"target":[2],"params":{{"t1":1.5,"t2":1.0,"reduction":"none"}}}}"#
    );
    let exact = eval_line_reference(&line, Path::new("."), 1).1;
    assert!(
        exact.as_ref().is_err_and(|e| e.message.contains("exponent range")),
        "{exact:?}"
    );
    let fast = eval_line(&line, Path::new("."), 1).1.unwrap();
    assert_eq!(flatten(fast.get("per_sample")), vec![f64::INFINITY]);
    assert_eq!(flatten(fast.get("grad")), vec![f64::INFINITY, 1.0, f64::NEG_INFINITY]);
    // Logits (9e138, −M, 0), label 1: Σ ≈ A_1 = −e^{M/2}, so g_1 = −∞ and
    // both others are −ẽ·Σ = +∞, the last one e^{−9e138}·e^{M/2} (the
    // reference, out of its range, had 0 there).
    let line = format!(
        r#"{{"loss":"bi_tempered_logistic_loss","logits":[[9e138,-{m:e},0.0]],"target":[1],"params":{{"t1":1.5,"t2":1.0,"reduction":"none"}}}}"#
    );
    let fast = eval_line(&line, Path::new("."), 1).1.unwrap();
    assert_eq!(
        flatten(fast.get("grad")),
        vec![f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY]
    );
}
