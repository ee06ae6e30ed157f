//! Repository-level checks: the README opens with the two commands, and CI
//! runs the README's test command plus the lint gates.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// The first fenced block of README.md holds exactly two commands.
fn readme_commands() -> Vec<String> {
    let readme = read("README.md");
    let block = readme
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no fenced block"));
    block
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn readme_opens_with_main_job_and_test_command() {
    let cmds = readme_commands();
    assert_eq!(cmds.len(), 2, "README must open with exactly two commands: {cmds:?}");
    assert!(cmds[0].starts_with("cargo run --release"), "{cmds:?}");
    assert!(
        cmds[1].starts_with("cargo test --workspace") || cmds[1].starts_with("cargo nextest"),
        "{cmds:?}"
    );
    // The README's text must come after the commands (they open it).
    let readme = read("README.md");
    let first_fence = readme.find("```").unwrap_or(usize::MAX);
    let first_para = readme.lines().skip(1).find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        first_para.starts_with("```"),
        "commands must come right after the title"
    );
    assert!(first_fence < 40, "commands must open the README");
}

#[test]
fn ci_runs_the_readme_test_command_and_the_gates() {
    let ci = read(".ci/run");
    let cmds = readme_commands();
    assert!(ci.contains(&cmds[1]), ".ci/run must call `{}`", cmds[1]);
    for gate in [
        "cargo fmt --all -- --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
    ] {
        assert!(ci.contains(gate), ".ci/run must run `{gate}`");
    }
}

#[test]
fn main_job_example_exists() {
    let cmds = readme_commands();
    if let Some(name) = cmds[0]
        .split("--example ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
    {
        assert!(
            root().join(format!("crates/entropic/examples/{name}.rs")).exists(),
            "README's example `{name}` is missing"
        );
    }
}

#[test]
fn top_level_folders_say_what_belongs_there() {
    for dir in ["docs", "verification", "tests"] {
        let text = read(&format!("{dir}/README.md"));
        assert!(text.lines().count() >= 3, "{dir}/README.md is too thin");
    }
    assert!(read("docs/architecture.md").contains("## Invariants"));
}
