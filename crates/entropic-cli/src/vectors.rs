//! Conformance vectors: every batch loss and option combination at edge,
//! spaced and seeded-random inputs, with correctly rounded `f64` and `f32`
//! values and gradients and a per-case ulp allowance; and the checker that
//! compares another implementation's results against them.
//!
//! Files (`verification/vectors/`): one JSON Lines file per loss, each line
//! an `entropic eval` input case plus `expected` and `allowance_ulps`, and
//! `manifest.json` with the schema version. Inputs are exactly
//! representable in `f32`, so one case serves both precisions. Output is
//! deterministic: a fixed seed, fixed case order, shortest round-trip
//! number formatting.

use std::collections::BTreeMap;
use std::path::Path;

use entropic_verify::generate::Inputs;
use serde_json::{Map, Value, json};

use crate::oracle::{CaseError, Dtype};
use crate::reference::{ReferenceOutput, evaluate, pick};
use crate::spec;

/// Version of the vector file format.
pub const SCHEMA_VERSION: u64 = 1;

/// Seed of the random cases.
pub const SEED: u64 = 20261129;

/// Per-case allowance in ulps (gradients: in ulps of the gradient's largest
/// entry), by loss family, for `c` classes. Each with its reason:
///
/// - cross-entropy family, `kl_div`, softmax focal: `4 + 2·⌈log2 c⌉` — a
///   handful of correctly rounded operations plus a pairwise (or better)
///   sum over the row;
/// - `kl_div` with `log_target`: additionally `+ 8`, because each element
///   `e^t·(t − x)` subtracts two log-probabilities;
/// - sigmoid focal: `16 + 4·γ` — the factor `exp(γ·ln(1−p_t))` multiplies the
///   rounding of `ln(1−p_t)` by `γ`;
/// - bi-tempered (and binary): `base + 16` — each class term is a Bregman
///   term evaluated without cancellation (a series near `p = y`), but it
///   depends on `ℓ = ln(p/y)`, and `ln p` carries the normalizer `λ`
///   (solved to working precision, a few ulps) and the rounding of
///   `ln1p((1−t2)(z − λ))/(1−t2)`; the loss's sensitivity to `ℓ` is
///   `ℓ·y^{2−t1}` against a value `≈ ℓ²·y^{2−t1}/2`, which doubles the
///   relative error of `ℓ` (measured worst, 88 vector cases: 9 ulp, binary
///   at `t1 = 0.8, t2 = 2`).
pub fn allowance_ulps(loss: &str, c: usize, params: &Value) -> u64 {
    let log2c = u64::from(usize::BITS - c.max(2).saturating_sub(1).leading_zeros());
    let base = 4 + 2 * log2c;
    match loss {
        "kl_div" if params.get("log_target").and_then(Value::as_bool) == Some(true) => base + 8,
        "sigmoid_focal_loss" => {
            let gamma = params.get("gamma").and_then(Value::as_f64).unwrap_or(2.0);
            16 + (4.0 * gamma).ceil() as u64
        }
        "bi_tempered_logistic_loss" | "bi_tempered_binary_logistic_loss" => base + 16,
        _ => base,
    }
}

fn f32_exact(x: f64) -> f64 {
    f64::from(x as f32)
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("nan")
    } else if x > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

fn matrix(xs: &[f64], n: usize, c: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| Value::Array(xs[i * c..(i + 1) * c].iter().map(|&v| num(v)).collect()))
            .collect(),
    )
}

struct Builder {
    inputs: Inputs,
    cases: BTreeMap<&'static str, Vec<Map<String, Value>>>,
}

impl Builder {
    fn push(&mut self, loss: &'static str, tag: &str, logits: Value, target: Value, params: Value) {
        let list = self.cases.entry(loss).or_default();
        let id = format!("{loss}/{:03}-{tag}", list.len());
        let mut m = Map::new();
        m.insert("id".into(), json!(id));
        m.insert("loss".into(), json!(loss));
        m.insert("logits".into(), logits);
        m.insert("target".into(), target);
        m.insert("params".into(), params);
        list.push(m);
    }

    fn random_logits(&mut self, n: usize, c: usize) -> Vec<f64> {
        (0..n).flat_map(|_| self.inputs.logits(c)).map(f32_exact).collect()
    }

    fn simplex_rows(&mut self, n: usize, c: usize) -> Vec<f64> {
        // Probabilities rounded to f32 need not sum to 1 exactly: soft labels
        // are not required to.
        (0..n)
            .flat_map(|_| self.inputs.simplex(c, true))
            .map(f32_exact)
            .collect()
    }
}

/// Edge rows shared by the softmax losses (all exactly representable in f32).
fn edge_rows() -> Vec<Vec<f64>> {
    let m = f64::from(f32::MAX);
    vec![
        vec![1e8, 1e8],
        vec![1e6, 1e6, 1e6],
        vec![m, m, m, m],
        vec![-m, -m],
        vec![m, -m, 0.0],
        vec![0.0, 0.0, 0.0, 0.0],
        vec![1e4, -1e4, 0.0],
        vec![88.0, -88.0, 0.5],
        vec![0.0, f64::NEG_INFINITY, 1.0],
        vec![3.0],
        vec![1e-30, -1e-30, 0.0],
    ]
}

/// The case catalogue, grouped by loss (inputs only).
pub fn catalogue() -> BTreeMap<&'static str, Vec<Map<String, Value>>> {
    let mut b = Builder {
        inputs: Inputs::new(SEED, false),
        cases: BTreeMap::new(),
    };
    let ce = "softmax_cross_entropy";
    let ce_options = [
        ("mean", json!({"reduction": "mean"})),
        ("sum-smoothing", json!({"reduction": "sum", "label_smoothing": 0.1})),
        ("none", json!({"reduction": "none"})),
    ];
    for row in edge_rows() {
        let c = row.len();
        for (tag, params) in &ce_options {
            b.push(
                ce,
                &format!("edge-c{c}-{tag}"),
                matrix(&row, 1, c),
                json!([c - 1]),
                params.clone(),
            );
        }
    }
    for c in [2usize, 3, 10, 100, 1000, 32000] {
        let n = if c <= 10 { 3 } else { 1 };
        let z = b.random_logits(n, c);
        let y: Vec<usize> = (0..n).map(|_| b.inputs.below(c)).collect();
        b.push(
            ce,
            &format!("random-c{c}"),
            matrix(&z, n, c),
            json!(y),
            json!({"reduction": "mean"}),
        );
    }
    for c in [3usize, 8] {
        let z = b.random_logits(2, c);
        let w: Vec<f64> = (0..c).map(|i| [0.5, 2.0, 1.0, 0.25][i % 4]).collect();
        b.push(
            ce,
            &format!("weighted-c{c}"),
            matrix(&z, 2, c),
            json!([0, c - 1]),
            json!({"weight": w, "reduction": "mean"}),
        );
        b.push(
            ce,
            &format!("ignore-c{c}"),
            matrix(&z, 2, c),
            json!([-100, 1]),
            json!({"reduction": "mean"}),
        );
        let p = b.simplex_rows(2, c);
        b.push(
            ce,
            &format!("probs-c{c}"),
            matrix(&z, 2, c),
            matrix(&p, 2, c),
            json!({"reduction": "mean", "label_smoothing": 0.05}),
        );
    }

    let bce = "binary_cross_entropy_with_logits";
    let xs = [1e9, -1e9, 0.0, 30.0, -30.0, 88.0, -88.0, 1e-8, -1e-8, 1e4, -1e4, 0.75];
    for (tag, params) in [
        ("none", json!({"reduction": "none"})),
        (
            "pos-weight-mean",
            json!({"reduction": "mean", "pos_weight": [2.0, 0.5, 1.0]}),
        ),
        ("weight-sum", json!({"reduction": "sum", "weight": [0.5, 1.0, 3.0]})),
    ] {
        let x: Vec<f64> = xs.iter().map(|&v| f32_exact(v)).collect();
        let y: Vec<f64> = (0..x.len()).map(|i| f32_exact([0.0, 1.0, 0.3][i % 3])).collect();
        b.push(bce, tag, matrix(&x, 4, 3), matrix(&y, 4, 3), params);
    }
    // Hard labels without weights: the f32 kernels' own path.
    let x: Vec<f64> = xs
        .iter()
        .chain(&[2.5, -7.25, 15.0, -0.125])
        .map(|&v| f32_exact(v))
        .collect();
    let y: Vec<f64> = (0..x.len()).map(|i| [0.0, 1.0][(i + i / 4) % 2]).collect();
    b.push(
        bce,
        "hard-mean",
        matrix(&x, 4, 4),
        matrix(&y, 4, 4),
        json!({"reduction": "mean"}),
    );

    let kl = "kl_div";
    for (tag, params) in [
        ("batchmean", json!({"reduction": "batchmean"})),
        ("log-target-mean", json!({"reduction": "mean", "log_target": true})),
    ] {
        let z = b.random_logits(2, 5);
        let lq: Vec<f64> = z
            .chunks(5)
            .flat_map(|r| entropic::log_softmax(r).unwrap_or_else(|_| vec![0.0; 5]))
            .map(f32_exact)
            .collect();
        let mut p = b.simplex_rows(2, 5);
        if tag.starts_with("log") {
            p = p.iter().map(|&v| f32_exact(v.ln())).collect();
        }
        b.push(kl, tag, matrix(&lq, 2, 5), matrix(&p, 2, 5), params);
    }

    let sf = "sigmoid_focal_loss";
    for (gamma, alpha) in [(0.0, -1.0), (0.5, 0.25), (2.0, 0.25), (5.0, -1.0)] {
        let x: Vec<f64> = [100.0, -100.0, 0.3, -2.0, 1e4, -1e4, 7.0, -0.5, 0.0]
            .iter()
            .map(|&v| f32_exact(v))
            .collect();
        let y: Vec<f64> = (0..9).map(|i| f32_exact([1.0, 0.0, 0.85][i % 3])).collect();
        b.push(
            sf,
            &format!("gamma{gamma}"),
            matrix(&x, 3, 3),
            matrix(&y, 3, 3),
            json!({"gamma": gamma, "alpha": alpha, "reduction": "none"}),
        );
    }
    // Hard labels: the f32 kernel's own path (q^γ as 1, q·q, or the f32
    // exponential of an exact pair).
    for (gamma, alpha) in [(0.0, 0.25), (2.0, 0.25), (3.7, -1.0)] {
        let x: Vec<f64> = [100.0, -100.0, 0.3, -2.0, 1e4, -1e4, 7.0, -0.5, 0.0, 13.8, -13.8, 40.0]
            .iter()
            .map(|&v| f32_exact(v))
            .collect();
        let y: Vec<f64> = (0..12).map(|i| [1.0, 0.0][(i + i / 3) % 2]).collect();
        b.push(
            sf,
            &format!("hard-gamma{gamma}"),
            matrix(&x, 4, 3),
            matrix(&y, 4, 3),
            json!({"gamma": gamma, "alpha": alpha, "reduction": "sum"}),
        );
    }
    let smf = "softmax_focal_loss";
    for gamma in [0.5, 2.0] {
        for row in edge_rows()
            .into_iter()
            .filter(|r| r.len() > 1 && r.iter().all(|v| v.is_finite()))
        {
            let c = row.len();
            b.push(
                smf,
                &format!("edge-c{c}-gamma{gamma}"),
                matrix(&row, 1, c),
                json!([0]),
                json!({"gamma": gamma}),
            );
        }
        let z = b.random_logits(3, 6);
        b.push(
            smf,
            &format!("random-gamma{gamma}"),
            matrix(&z, 3, 6),
            json!([0, 5, 2]),
            json!({"gamma": gamma, "reduction": "sum"}),
        );
    }

    let bt = "bi_tempered_logistic_loss";
    b.push(
        bt,
        "published",
        json!([[-0.5, 0.1, 2.0], [0.1, 1.5, -5.0], [4.0, -3.0, -6.0]]),
        json!([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.2, 0.8, 0.0]]),
        json!({"t1": 0.5, "t2": 1.5, "reduction": "none"}),
    );
    for (t1, t2) in [(0.5, 1.5), (0.8, 1.2), (0.2, 4.0), (0.9, 0.6), (1.0, 1.0), (0.8, 2.0)] {
        let z = b.random_logits(2, 5);
        b.push(
            bt,
            &format!("t1-{t1}-t2-{t2}-classes"),
            matrix(&z, 2, 5),
            json!([1, 4]),
            json!({"t1": t1, "t2": t2}),
        );
        let p = b.simplex_rows(2, 5);
        b.push(
            bt,
            &format!("t1-{t1}-t2-{t2}-smoothing"),
            matrix(&z, 2, 5),
            matrix(&p, 2, 5),
            json!({"t1": t1, "t2": t2, "label_smoothing": 0.1}),
        );
    }
    // Confident, correct rows: the loss is far below its O(1) Bregman terms
    // (an evaluation that forms those terms separately loses every digit
    // here), down to an exact 0 outside the finite support (t2 < 1). No row
    // sits on the support boundary 1 + (1 − t2)(z − λ) = 0 (e.g. [5, 0, −1]
    // at t2 = 0.8), where the value's condition number is unbounded and no
    // ulp allowance can hold.
    for (t1, t2) in [(1.0, 1.0), (0.8, 1.2), (0.5, 0.8), (1.9, 1.1)] {
        b.push(
            bt,
            &format!("confident-t1-{t1}-t2-{t2}"),
            json!([[20.0, 0.0, -1.0], [40.0, 0.0, 0.0], [3.0, 0.0, -1.0]]),
            json!([0, 0, 0]),
            json!({"t1": t1, "t2": t2, "reduction": "none"}),
        );
    }
    let btb = "bi_tempered_binary_logistic_loss";
    let x: Vec<f64> = [0.0, 3.0, -3.0, 20.0, -20.0, 1.5]
        .iter()
        .map(|&v| f32_exact(v))
        .collect();
    let y: Vec<f64> = [1.0, 0.0, 1.0, 0.0, 1.0, 0.5].iter().map(|&v| f32_exact(v)).collect();
    b.push(
        btb,
        "t1-0.8-t2-2",
        matrix(&x, 2, 3),
        matrix(&y, 2, 3),
        json!({"t1": 0.8, "t2": 2.0, "reduction": "none"}),
    );
    b.cases
}

fn expected_json(r: &ReferenceOutput, dtype: Dtype, shape: &[usize]) -> Value {
    let v = |xs: &[entropic_verify::precise::CorrectlyRounded]| {
        Value::Array(xs.iter().map(|x| num(pick(x, dtype))).collect::<Vec<_>>())
    };
    let g: Vec<f64> = r.grad.iter().map(|x| pick(x, dtype)).collect();
    let grad = match shape {
        [n, c] => matrix(&g, *n, *c),
        _ => Value::Array(g.iter().map(|&x| num(x)).collect()),
    };
    json!({
        "per_sample": v(&r.per_sample),
        "loss": r.loss.as_ref().map_or(Value::Null, |x| num(pick(x, dtype))),
        "grad": grad,
    })
}

/// Renders every vector file: `(relative path, contents)`.
///
/// # Errors
/// A case that cannot be evaluated or certified (names the case id).
pub fn render(mut progress: impl FnMut(&str)) -> Result<Vec<(String, String)>, String> {
    let base = Path::new(".");
    let mut files = Vec::new();
    let mut manifest = Map::new();
    for (loss, cases) in catalogue() {
        let mut text = String::new();
        for case in &cases {
            let id = case.get("id").and_then(Value::as_str).unwrap_or("?").to_string();
            progress(&id);
            let fail = |e: CaseError| format!("{id}: field {}: {}", e.field, e.message);
            let spec = spec::parse(loss, case, base).map_err(fail)?;
            let r = evaluate(&spec).map_err(fail)?;
            let mut line = case.clone();
            line.insert(
                "expected".into(),
                json!({"f64": expected_json(&r, Dtype::F64, &spec.shape), "f32": expected_json(&r, Dtype::F32, &spec.shape)}),
            );
            let a = allowance_ulps(loss, spec.case.c, case.get("params").unwrap_or(&Value::Null));
            line.insert("allowance_ulps".into(), json!({"f64": a, "f32": a}));
            text.push_str(&Value::Object(line).to_string());
            text.push('\n');
        }
        manifest.insert(
            loss.into(),
            json!({"file": format!("{loss}.jsonl"), "cases": cases.len()}),
        );
        files.push((format!("{loss}.jsonl"), text));
    }
    let manifest = json!({
        "schema_version": SCHEMA_VERSION,
        "generator": "entropic vectors --out verification/vectors/",
        "seed": SEED,
        "reference": "production generic definitions in dashu-float at 256 and 512 bits; values are the correctly rounded f64/f32 of the exact result (certified: both precisions round alike)",
        "allowance": "per loss family (see entropic-cli src/vectors.rs allowance_ulps): 4 + 2*ceil(log2 c) for the cross-entropy family, +8 for kl_div with log_target, 16 + 4*gamma for sigmoid focal, 4 + 2*ceil(log2 c) + 16 for bi-tempered; gradients in ulps of the gradient's largest entry",
        "losses": manifest,
    });
    files.push((
        "manifest.json".into(),
        format!("{}\n", serde_json::to_string_pretty(&manifest).unwrap_or_default()),
    ));
    Ok(files)
}
