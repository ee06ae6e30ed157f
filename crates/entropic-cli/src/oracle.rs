//! The reference oracle: one JSON case in, one JSON result out.
//!
//! The schema is documented in `docs/oracle.md`. Parsing works on
//! `serde_json::Value` so that every error names the field it is about.

use std::path::{Path, PathBuf};

use entropic::{Batch, Float, LossOutput, Reduction};
use entropic_verify::loss::LossUnderTest;
use serde_json::{Map, Value, json};

use crate::npy;

/// A case-level error: the field it is about and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseError {
    /// The JSON field (`logits`, `params.reduction`, …), or `case` for the whole line.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl CaseError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<entropic::Error> for CaseError {
    fn from(e: entropic::Error) -> Self {
        let field = match &e {
            entropic::Error::ClassOutOfRange { .. } => "target",
            entropic::Error::InvalidParameter { name, .. } => name,
            entropic::Error::NonFinite { what, .. }
            | entropic::Error::OutOfDomain { what, .. }
            | entropic::Error::ShapeMismatch { what, .. }
            | entropic::Error::NotNormalized { what, .. }
            | entropic::Error::Empty { what }
            | entropic::Error::InvalidShape { what, .. }
            | entropic::Error::NoFiniteLogit { what, .. } => field_of(what),
            _ => "case",
        };
        Self::new(field, e.to_string())
    }
}

/// Maps the library's input names onto the case's field names.
fn field_of(what: &str) -> &'static str {
    match what {
        w if w.starts_with("logits") || w.starts_with("input") || w == "batch" || w == "batch data" => "logits",
        w if w.contains("target") || w == "labels" => "target",
        "weight" => "params.weight",
        "pos_weight" => "params.pos_weight",
        "p" => "p",
        "q" => "q",
        _ => "case",
    }
}

type R<T> = Result<T, CaseError>;

/// Element precision of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

/// A number from JSON: a number, or the strings `"inf"`, `"-inf"`, `"nan"`
/// (JSON has no literal for them).
pub(crate) fn number(v: &Value, field: &str) -> R<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| CaseError::new(field, format!("{n} is not a number"))),
        Value::String(s) => match s.as_str() {
            "inf" | "+inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            "nan" | "NaN" => Ok(f64::NAN),
            other => Err(CaseError::new(
                field,
                format!("\"{other}\" is not a number (use a number, \"inf\", \"-inf\" or \"nan\")"),
            )),
        },
        other => Err(CaseError::new(
            field,
            format!("expected a number, found {}", kind(other)),
        )),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A dense array: its flat row-major data and shape (`[n]` or `[n, c]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Row-major values.
    pub data: Vec<f64>,
    /// `[n]` or `[n, c]`.
    pub shape: Vec<usize>,
}

impl Array {
    fn rows_cols(&self) -> (usize, usize) {
        match self.shape.as_slice() {
            [n, c] => (*n, *c),
            [n] => (*n, 1),
            _ => (0, 0),
        }
    }
}

/// Reads `[..]`, `[[..], ..]` or `{"npy": "path"}`.
pub(crate) fn array(v: &Value, field: &str, base: &Path) -> R<Array> {
    match v {
        Value::Object(m) => {
            let path = m
                .get("npy")
                .and_then(Value::as_str)
                .ok_or_else(|| CaseError::new(field, "an object must be {\"npy\": \"path/to/file.npy\"}"))?;
            let full: PathBuf = base.join(path);
            npy::read(&full).map_err(|e| CaseError::new(field, format!("{}: {e}", full.display())))
        }
        Value::Array(items) => {
            if items.iter().all(|x| matches!(x, Value::Array(_))) && !items.is_empty() {
                let mut data = Vec::new();
                let mut c = None;
                for (i, row) in items.iter().enumerate() {
                    let Value::Array(row) = row else { unreachable!() };
                    if *c.get_or_insert(row.len()) != row.len() {
                        return Err(CaseError::new(
                            format!("{field}[{i}]"),
                            format!("row has {} entries, row 0 has {}", row.len(), c.unwrap_or(0)),
                        ));
                    }
                    for (j, x) in row.iter().enumerate() {
                        data.push(number(x, &format!("{field}[{i}][{j}]"))?);
                    }
                }
                Ok(Array {
                    data,
                    shape: vec![items.len(), c.unwrap_or(0)],
                })
            } else {
                let data = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| number(x, &format!("{field}[{i}]")))
                    .collect::<R<Vec<_>>>()?;
                Ok(Array {
                    shape: vec![data.len()],
                    data,
                })
            }
        }
        other => Err(CaseError::new(
            field,
            format!("expected an array, found {}", kind(other)),
        )),
    }
}

/// The case's parameters, with a check that every given key is known.
pub(crate) struct Params<'a> {
    map: Option<&'a Map<String, Value>>,
    known: &'static [&'static str],
}

impl<'a> Params<'a> {
    pub(crate) fn new(case: &'a Map<String, Value>, known: &'static [&'static str]) -> R<Self> {
        let map = match case.get("params") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                return Err(CaseError::new(
                    "params",
                    format!("expected an object, found {}", kind(other)),
                ));
            }
        };
        if let Some(m) = map {
            for k in m.keys() {
                if !known.contains(&k.as_str()) {
                    return Err(CaseError::new(
                        format!("params.{k}"),
                        format!("unknown parameter for this loss (known: {})", known.join(", ")),
                    ));
                }
            }
        }
        Ok(Self { map, known })
    }

    pub(crate) fn get(&self, k: &str) -> Option<&'a Value> {
        debug_assert!(self.known.contains(&k));
        self.map.and_then(|m| m.get(k)).filter(|v| !v.is_null())
    }

    pub(crate) fn f64(&self, k: &str, default: f64) -> R<f64> {
        self.get(k).map_or(Ok(default), |v| number(v, &format!("params.{k}")))
    }

    pub(crate) fn bool(&self, k: &str, default: bool) -> R<bool> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(CaseError::new(
                format!("params.{k}"),
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    pub(crate) fn vec(&self, k: &str) -> R<Option<Vec<f64>>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Array(xs)) => xs
                .iter()
                .enumerate()
                .map(|(i, x)| number(x, &format!("params.{k}[{i}]")))
                .collect::<R<Vec<_>>>()
                .map(Some),
            Some(other) => Err(CaseError::new(
                format!("params.{k}"),
                format!("expected an array, found {}", kind(other)),
            )),
        }
    }

    pub(crate) fn int(&self, k: &str, default: i64) -> R<i64> {
        match self.get(k) {
            None => Ok(default),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| CaseError::new(format!("params.{k}"), format!("{n} is not an integer"))),
            Some(other) => Err(CaseError::new(
                format!("params.{k}"),
                format!("expected an integer, found {}", kind(other)),
            )),
        }
    }

    pub(crate) fn reduction(&self, default: Reduction, allowed: &[Reduction]) -> R<Reduction> {
        let r = match self.get("reduction") {
            None => default,
            Some(Value::String(s)) => match s.as_str() {
                "none" => Reduction::None,
                "sum" => Reduction::Sum,
                "mean" => Reduction::Mean,
                "batchmean" => Reduction::BatchMean,
                other => {
                    return Err(CaseError::new(
                        "params.reduction",
                        format!("unknown reduction \"{other}\""),
                    ));
                }
            },
            Some(other) => {
                return Err(CaseError::new(
                    "params.reduction",
                    format!("expected a string, found {}", kind(other)),
                ));
            }
        };
        if !allowed.contains(&r) {
            return Err(CaseError::new(
                "params.reduction",
                format!("\"{}\" is not available for this loss", r.as_str()),
            ));
        }
        Ok(r)
    }
}

/// Every loss name the oracle knows.
pub const LOSSES: &[&str] = &[
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "logsumexp",
    "softmax",
    "log_softmax",
    "information",
    "entropy",
    "cross_entropy",
    "kl_divergence",
    "js_divergence",
    "bi_tempered_logistic_loss",
    "bi_tempered_binary_logistic_loss",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "tempered_softmax",
    "tempered_sigmoid",
    "log_t",
    "exp_t",
];

pub(crate) fn required<'a>(case: &'a Map<String, Value>, field: &str) -> R<&'a Value> {
    case.get(field).ok_or_else(|| CaseError::new(field, "missing"))
}

/// Class targets with PyTorch's `ignore_index` (default −100): returns the
/// `usize` classes, mapping the ignore value to `usize::MAX`.
pub(crate) fn class_targets(target: &Array, ignore_index: i64) -> R<Vec<usize>> {
    target
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() != 0.0 || !v.is_finite() {
                return Err(CaseError::new(
                    format!("target[{i}]"),
                    format!("{v} is not a class index"),
                ));
            }
            let k = v as i64;
            if k == ignore_index {
                Ok(usize::MAX)
            } else if k < 0 {
                Err(CaseError::new(
                    format!("target[{i}]"),
                    format!("class index {k} is negative and not ignore_index"),
                ))
            } else {
                Ok(k as usize)
            }
        })
        .collect()
}

pub(crate) fn to_json<T: Float>(x: T) -> Value {
    let v = x.to_f64();
    if v.is_finite() {
        // f32 values print with their own shortest representation.
        if T::NAME == "f32" { json!(v as f32) } else { json!(v) }
    } else if v.is_nan() {
        json!("nan")
    } else if v > 0.0 {
        json!("inf")
    } else {
        json!("-inf")
    }
}

pub(crate) fn to_json_vec<T: Float>(xs: &[T]) -> Value {
    Value::Array(xs.iter().map(|&x| to_json(x)).collect())
}

pub(crate) fn to_json_matrix<T: Float>(xs: &[T], shape: &[usize]) -> Value {
    match shape {
        [_, c] if *c > 0 => Value::Array(xs.chunks(*c).map(to_json_vec).collect()),
        _ => to_json_vec(xs),
    }
}

pub(crate) fn cast<T: Float>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::round_from(x)).collect()
}

/// Result of one loss: per-sample values, reduced value, gradient.
fn loss_result<T: Float>(out: LossOutput<T>, grad: &[T], shape: &[usize]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("per_sample".into(), to_json_vec(&out.unreduced));
    m.insert("loss".into(), out.reduced.map_or(Value::Null, to_json));
    m.insert("grad".into(), to_json_matrix(grad, shape));
    m
}

/// Evaluates one parsed case. `base` resolves relative `.npy` paths.
pub fn evaluate(case: &Map<String, Value>, base: &Path) -> R<Map<String, Value>> {
    let loss = match required(case, "loss")? {
        Value::String(s) => s.as_str(),
        other => {
            return Err(CaseError::new(
                "loss",
                format!("expected a string, found {}", kind(other)),
            ));
        }
    };
    let dtype = match case.get("dtype") {
        None => Dtype::F64,
        Some(Value::String(s)) if s == "f64" || s == "float64" => Dtype::F64,
        Some(Value::String(s)) if s == "f32" || s == "float32" => Dtype::F32,
        Some(other) => {
            return Err(CaseError::new(
                "dtype",
                format!("expected \"f32\" or \"f64\", found {other}"),
            ));
        }
    };
    if !LOSSES.contains(&loss) {
        return Err(CaseError::new(
            "loss",
            format!("unknown loss \"{loss}\" (known: {})", LOSSES.join(", ")),
        ));
    }
    match dtype {
        Dtype::F64 => evaluate_typed::<f64>(loss, case, base),
        Dtype::F32 => evaluate_typed::<f32>(loss, case, base),
    }
}

pub(crate) fn batch_of<'a, T>(data: &'a [T], a: &Array, field: &str) -> R<Batch<'a, T>> {
    let (n, c) = a.rows_cols();
    if a.shape.len() > 2 {
        return Err(CaseError::new(
            field,
            format!("expected 1 or 2 dimensions, found shape {:?}", a.shape),
        ));
    }
    Batch::new(data, n, c).map_err(|e| CaseError::new(field, e.to_string()))
}

fn evaluate_typed<T: Float>(loss: &str, case: &Map<String, Value>, base: &Path) -> R<Map<String, Value>> {
    let arr = |field: &str| -> R<Array> { array(required(case, field)?, field, base) };
    match loss {
        l if crate::spec::BATCH_LOSSES.contains(&l) => {
            let spec = crate::spec::parse(l, case, base)?;
            // Every input is rounded to the dtype (labels and target
            // probabilities too), exactly as the reference mode rounds them.
            let rounded = if T::NAME == "f32" {
                crate::reference::rounded_case(&spec.case, Dtype::F32)
            } else {
                spec.case.clone()
            };
            let x: Vec<T> = cast(&rounded.logits);
            let (out, grad) = spec.loss.kernel(&rounded, &x)?;
            Ok(loss_result(out, &grad, &spec.shape))
        }
        "logsumexp" | "softmax" | "log_softmax" => {
            Params::new(case, &[])?;
            let logits = arr("logits")?;
            let x: Vec<T> = cast(&logits.data);
            let b = batch_of(&x, &logits, "logits")?;
            let mut m = Map::new();
            match loss {
                "logsumexp" => {
                    let mut values = Vec::with_capacity(b.n());
                    let mut grad = vec![T::zero(); x.len()];
                    for (i, row) in b.rows().enumerate() {
                        values.push(entropic::logsumexp(row).map_err(|e| with_row(e, i))?);
                    }
                    entropic::softmax_batch_into(b, &mut grad)?;
                    m.insert("value".into(), to_json_vec(&values));
                    m.insert("grad".into(), to_json_matrix(&grad, &logits.shape));
                }
                _ => {
                    let mut out = vec![T::zero(); x.len()];
                    if loss == "softmax" {
                        entropic::softmax_batch_into(b, &mut out)?;
                    } else {
                        entropic::log_softmax_batch_into(b, &mut out)?;
                    }
                    m.insert("value".into(), to_json_matrix(&out, &logits.shape));
                }
            }
            Ok(m)
        }
        "information" => {
            Params::new(case, &[])?;
            let p = number(required(case, "p")?, "p")?;
            let v = entropic::information(T::round_from(p))?;
            let mut m = Map::new();
            m.insert("value".into(), to_json(v));
            m.insert("grad".into(), to_json(T::round_from(-1.0 / T::round_from(p).to_f64())));
            Ok(m)
        }
        "entropy" => {
            Params::new(case, &[])?;
            let p: Vec<T> = cast(&arr("p")?.data);
            let mut m = Map::new();
            m.insert("value".into(), to_json(entropic::entropy(&p)?));
            m.insert("grad".into(), to_json_vec(&entropic::entropy_grad(&p)?));
            Ok(m)
        }
        "cross_entropy" | "kl_divergence" | "js_divergence" => {
            Params::new(case, &[])?;
            let p: Vec<T> = cast(&arr("p")?.data);
            let q: Vec<T> = cast(&arr("q")?.data);
            let (v, (gp, gq)) = match loss {
                "cross_entropy" => (entropic::cross_entropy(&p, &q)?, entropic::cross_entropy_grad(&p, &q)?),
                "kl_divergence" => (entropic::kl_divergence(&p, &q)?, entropic::kl_divergence_grad(&p, &q)?),
                _ => (entropic::js_divergence(&p, &q)?, entropic::js_divergence_grad(&p, &q)?),
            };
            let mut m = Map::new();
            m.insert("value".into(), to_json(v));
            m.insert("grad".into(), json!({"p": to_json_vec(&gp), "q": to_json_vec(&gq)}));
            Ok(m)
        }
        "tempered_softmax" => {
            let p = Params::new(case, &["t"])?;
            let logits = arr("logits")?;
            let x: Vec<T> = cast(&logits.data);
            let b = batch_of(&x, &logits, "logits")?;
            let t = p.f64("t", 1.0)?;
            let mut out = Vec::with_capacity(x.len());
            for (i, row) in b.rows().enumerate() {
                out.extend(entropic::tempered_softmax(row, t).map_err(|e| with_row(e, i))?);
            }
            let mut m = Map::new();
            m.insert("value".into(), to_json_matrix(&out, &logits.shape));
            Ok(m)
        }
        "tempered_sigmoid" | "log_t" | "exp_t" => {
            let p = Params::new(case, &["t"])?;
            let t = p.f64("t", 1.0)?;
            if !t.is_finite() {
                return Err(CaseError::new("params.t", format!("{t} is not finite")));
            }
            let xs = arr("x")?;
            let mut values = Vec::with_capacity(xs.data.len());
            let mut grads = Vec::with_capacity(xs.data.len());
            for &x in &xs.data {
                // Value and derivative from one dual-number evaluation of the
                // generic function (exact derivative of the same code).
                let x = T::round_from(x).to_f64();
                let (v, g) = match loss {
                    // Closed-form derivatives: x^{−t} and exp_t(x)^t (exact at
                    // the ends of the domain, where x^{−t} → +∞ at x = 0).
                    "log_t" => (entropic::log_t(x, t), x.powf(-t)),
                    "exp_t" => {
                        let e = entropic::exp_t(x, t);
                        (e, e.powf(t))
                    }
                    _ => {
                        let d = entropic::tempered_sigmoid(num_dual::Dual64::from_re(x).derivative(), t)?;
                        (d.re, d.eps)
                    }
                };
                values.push(T::round_from(v));
                grads.push(T::round_from(g));
            }
            let mut m = Map::new();
            m.insert("value".into(), to_json_vec(&values));
            m.insert("grad".into(), to_json_vec(&grads));
            Ok(m)
        }
        other => Err(CaseError::new("loss", format!("unknown loss \"{other}\""))),
    }
}

fn with_row(e: entropic::Error, row: usize) -> CaseError {
    let mut c = CaseError::from(e);
    c.message = format!("row {row}: {}", c.message);
    c
}
