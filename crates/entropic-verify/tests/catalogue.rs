//! The whole default run must pass; its table is printed on failure.

#[test]
fn default_run_passes_every_claim() {
    let report = entropic_verify::run(&entropic_verify::Config {
        seed: 2026,
        extensive: false,
    });
    println!("{}", report.to_table());
    assert!(report.passed(), "{}", report.to_table());
    // Every claim tried something.
    assert!(report.outcomes.iter().all(|o| o.cases > 0));
}

#[test]
fn another_seed_passes_too() {
    let report = entropic_verify::run(&entropic_verify::Config {
        seed: 7,
        extensive: false,
    });
    assert!(report.passed(), "{}", report.to_table());
}
