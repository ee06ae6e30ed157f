//! The generated derivation docs: fresh, deterministic, and unable to show
//! a step (or a "wrong form") the verifier did not check.

use std::path::PathBuf;

use entropic_verify::derivations::{self, Case, Derivation, DocsError, Domain, Mistake, Step};
use entropic_verify::generate::Inputs;
use entropic_verify::tolerance::{Tally, Tolerance};

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

const REGENERATE: &str = "run `cargo run -p entropic-cli -- docs --out docs/` (or \
                          `cargo test -p entropic-verify --test derivations -- --ignored regenerate`)";

#[test]
fn committed_docs_are_fresh() {
    let files = derivations::render_all().unwrap_or_else(|e| panic!("generation failed: {e}"));
    let dir = docs_dir();
    let mut stale = Vec::new();
    for (rel, bytes) in &files {
        match std::fs::read(dir.join(rel)) {
            Ok(committed) if committed == *bytes => {}
            Ok(_) => stale.push(format!("{rel} differs")),
            Err(e) => stale.push(format!("{rel} missing ({e})")),
        }
    }
    // Files under docs/derivations that the generator no longer writes.
    let expected: Vec<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
    for sub in ["derivations", "derivations/figures"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    let rel = format!("{sub}/{}", entry.file_name().to_string_lossy());
                    if !expected.contains(&rel.as_str()) {
                        stale.push(format!("{rel} is not generated any more (delete it)"));
                    }
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/derivations is stale: {REGENERATE}.\n{}",
        stale.join("\n")
    );
}

/// Writes the docs (`--ignored regenerate`), for use before the CLI subcommand exists.
#[test]
#[ignore = "writes docs/derivations; run explicitly to regenerate"]
fn regenerate_docs() {
    let written = derivations::generate(&docs_dir()).unwrap_or_else(|e| panic!("generation failed: {e}"));
    assert!(!written.is_empty());
}

#[test]
fn rendering_is_deterministic() {
    let a = derivations::render_all().unwrap_or_else(|e| panic!("{e}"));
    let b = derivations::render_all().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.len(), b.len());
    for ((pa, ba), (pb, bb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert!(ba == bb, "{pa} differs between two renderings");
    }
}

#[test]
fn generate_writes_every_file() {
    let dir = std::env::temp_dir().join(format!("entropic-docs-test-{}", std::process::id()));
    let written = derivations::generate(&dir).unwrap_or_else(|e| panic!("{e}"));
    let files = derivations::render_all().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.len(), files.len());
    for (rel, bytes) in &files {
        assert_eq!(std::fs::read(dir.join(rel)).ok().as_ref(), Some(bytes), "{rel}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pages_math_survives_github_markdown() {
    // Backslash escapes of ASCII punctuation (`\|`, `\,`, `\{`, …) are eaten
    // by Markdown before MathJax sees them: the generator rewrites them.
    for (rel, bytes) in derivations::render_all().unwrap_or_else(|e| panic!("{e}")) {
        if !rel.ends_with(".md") {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap_or_default();
        for bad in [
            r"\|",
            r"\,",
            r"\;",
            r"\!",
            r"\{",
            r"\}",
            r"\\",
            r"\_",
            r"\#",
            r"\%",
            r"\&",
            r"\$",
            "begin{align",
        ] {
            assert!(!text.contains(bad), "{rel} contains {bad}");
        }
        assert_eq!(text.matches("$$").count() % 2, 0, "{rel}: unbalanced $$");
        if !rel.ends_with("README.md") {
            assert!(text.contains("## Common mistakes"), "{rel} has no mistakes section");
        }
    }
}

#[test]
fn figures_are_svg_with_labels() {
    let files = derivations::render_all().unwrap_or_else(|e| panic!("{e}"));
    let svgs: Vec<_> = files.iter().filter(|(r, _)| r.ends_with(".svg")).collect();
    assert_eq!(svgs.len(), 6);
    for (rel, bytes) in svgs {
        let text = String::from_utf8_lossy(bytes);
        assert!(text.starts_with("<svg"), "{rel}");
        assert!(
            text.matches("<text").count() > 10,
            "{rel}: axis labels and legend expected"
        );
    }
}

fn scalar_cases(inputs: &mut Inputs) -> (Vec<Case>, Vec<Case>) {
    let edge = vec![Case {
        x: 1.0,
        ..Case::default()
    }];
    let random = (0..50)
        .map(|_| Case {
            x: inputs.uniform(0.1, 10.0),
            ..Case::default()
        })
        .collect();
    (edge, random)
}

const SCALARS: Domain = Domain {
    description: "x in [0.1, 10]",
    cases: scalar_cases,
};

const TIGHT: Tolerance = Tolerance::relative(1e-14, "test");

#[test]
fn a_wrong_step_stops_generation_and_is_named() {
    const BROKEN: Derivation = Derivation {
        id: "test.broken",
        title: "broken",
        domain: SCALARS,
        tolerance: TIGHT,
        scale: |_| 0.0,
        steps: &[
            Step::eq(r"\ln(x^2)", "", |c| Some(vec![(c.x * c.x).ln()])),
            Step::eq(r"2 \ln x", "power rule", |c| Some(vec![2.0 * c.x.ln()])),
            // Wrong: ln x² is not (ln x)².
            Step::eq(r"(\ln x)^2", "a slip", |c| Some(vec![c.x.ln().powi(2)])),
            Step::eq(r"\ln x \cdot \ln x", "fine after the slip", |c| {
                Some(vec![c.x.ln() * c.x.ln()])
            }),
        ],
    };
    match derivations::check(&BROKEN) {
        Err(DocsError::StepFailed {
            derivation,
            step,
            latex,
            detail,
        }) => {
            assert_eq!((derivation, step, latex), ("test.broken", 2, r"(\ln x)^2"));
            assert!(detail.contains("x="), "the counterexample is named: {detail}");
            let msg = DocsError::StepFailed {
                derivation,
                step,
                latex,
                detail,
            }
            .to_string();
            assert!(msg.contains("step 2") && msg.contains(r"(\ln x)^2"), "{msg}");
        }
        other => panic!("expected a failure at step 2, got {other:?}"),
    }
    // The correct prefix passes, with evidence per step.
    const GOOD: Derivation = Derivation {
        steps: &[
            Step::eq(r"\ln(x^2)", "", |c| Some(vec![(c.x * c.x).ln()])),
            Step::eq(r"2 \ln x", "power rule", |c| Some(vec![2.0 * c.x.ln()])),
        ],
        ..BROKEN
    };
    let checked = derivations::check(&GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(checked.evidence.len(), 1);
    assert_eq!(checked.evidence[0].cases, 51);
}

#[test]
fn a_step_that_cannot_be_evaluated_is_named() {
    const UNDEFINED: Derivation = Derivation {
        id: "test.undefined",
        title: "undefined",
        domain: SCALARS,
        tolerance: TIGHT,
        scale: |_| 0.0,
        steps: &[
            Step::eq("x", "", |c| Some(vec![c.x])),
            Step::eq("y", "", |c| if c.x > 5.0 { None } else { Some(vec![c.x]) }),
        ],
    };
    assert!(matches!(
        derivations::check(&UNDEFINED),
        Err(DocsError::StepFailed { step: 1, .. })
    ));
}

#[test]
fn a_false_inequality_step_fails() {
    const FALSE_BOUND: Derivation = Derivation {
        id: "test.bound",
        title: "bound",
        domain: SCALARS,
        tolerance: TIGHT,
        scale: |_| 1.0,
        steps: &[
            Step::eq(r"\ln x", "", |c| Some(vec![c.x.ln()])),
            // ln x ≤ x − 1 holds; ln x ≤ (x − 1)/2 does not for x < 1.
            Step::le(r"x - 1", "tangent", |c| Some(vec![c.x - 1.0])),
            Step::le(r"(x - 1)/2", "false", |c| Some(vec![(c.x - 1.0) / 2.0])),
        ],
    };
    assert!(matches!(
        derivations::check(&FALSE_BOUND),
        Err(DocsError::StepFailed { step: 2, .. })
    ));
}

#[test]
fn a_wrong_form_that_is_not_rejected_fails_generation() {
    // A "mistake" that is actually right: KL = CE − H.
    const NOT_A_MISTAKE: Mistake = Mistake {
        id: "test.not_a_mistake",
        why: "not wrong",
        wrong: r"D_{KL} = H(P, Q) - H(P)",
        right: r"D_{KL} = H(P, Q) - H(P)",
        family: "equal_on_pairs",
        run: |inputs: &mut Inputs| -> Tally {
            entropic_verify::claims::equal_on_pairs(
                inputs,
                &entropic_verify::claims::INFO_IDENTITY,
                &|p, q| entropic::kl_divergence(p, q).ok(),
                &|p, q| Some(entropic::cross_entropy(p, q).ok()? - entropic::entropy(p).ok()?),
            )
        },
    };
    match derivations::reject(&NOT_A_MISTAKE) {
        Err(DocsError::MistakeNotRejected { mistake, cases }) => {
            assert_eq!(mistake, "test.not_a_mistake");
            assert!(cases > 100);
        }
        other => panic!("expected MistakeNotRejected, got {other:?}"),
    }
    // And a real mistake is rejected with a counterexample.
    const MISSING_MINUS: Mistake = Mistake {
        id: "test.missing_minus",
        run: |inputs: &mut Inputs| -> Tally {
            entropic_verify::claims::equal_on_pairs(
                inputs,
                &entropic_verify::claims::INFO_IDENTITY,
                &|p, q| entropic::cross_entropy(p, q).ok(),
                &|p, q| {
                    Some(
                        p.iter()
                            .zip(q)
                            .filter(|(a, _)| **a > 0.0)
                            .map(|(a, b)| a * b.ln())
                            .sum(),
                    )
                },
            )
        },
        ..NOT_A_MISTAKE
    };
    let r = derivations::reject(&MISSING_MINUS).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.counterexample.contains("p="), "{}", r.counterexample);
}

#[test]
fn generation_is_fast() {
    let start = std::time::Instant::now();
    derivations::render_all().unwrap_or_else(|e| panic!("{e}"));
    let elapsed = start.elapsed();
    assert!(elapsed.as_secs_f64() < 5.0, "render_all took {elapsed:?}");
}
