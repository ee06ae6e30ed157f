//! `entropic`: the verification report, a reference oracle for other
//! implementations, conformance vectors, and checks of other libraries'
//! outputs. Run `entropic --help` for the subcommands.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use entropic_cli::{eval_line, eval_line_reference};
use serde_json::{Map, Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "entropic",
    version,
    about = "Classification losses whose mathematics is checked by machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the verifier's claim catalogue and print the report table.
    ///
    /// Exit code 0 only when every claim holds.
    ///
    /// Examples:
    ///   entropic verify
    ///   entropic verify --extensive --json verification/reports/verify.json
    Verify {
        /// Run the long sweeps (20x the random cases).
        #[arg(long)]
        extensive: bool,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Seed of the random cases.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Evaluate losses as a reference oracle: JSON Lines in, JSON Lines out.
    ///
    /// One case per line, one result per line, in order. A bad case yields an
    /// error record {"id", "error", "line", "field"} in its place (the others
    /// are unaffected), a one-line message on stderr, and exit code 1.
    /// Arrays can be given inline or as {"npy": "file.npy"}, relative to the
    /// input file's folder. Schema: docs/oracle.md.
    ///
    /// Example:
    ///   echo '{"id":"ce-1","loss":"softmax_cross_entropy","dtype":"f64","logits":[[1.0,2.0,3.0]],"target":[2],"params":{"reduction":"mean","label_smoothing":0.1}}' | entropic eval
    Eval {
        /// Input file (JSON Lines); `-` or nothing reads stdin.
        input: Option<PathBuf>,
        /// Write results to this file instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Evaluate the batch losses with the high-precision definitions and
        /// print the certified, correctly rounded values for the case's dtype.
        #[arg(long)]
        reference: bool,
    },
    /// Write the conformance vectors (correctly rounded values and gradients
    /// in f64 and f32, per-case ulp allowances) into a folder.
    ///
    /// Deterministic: the same bytes on every run.
    ///
    /// Example:
    ///   entropic vectors --out verification/vectors/
    Vectors {
        /// Output folder.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Compare another implementation's results (the `eval` output format)
    /// with the conformance vectors; exit code 1 on any case over its
    /// allowance, missing, or NaN.
    ///
    /// Example:
    ///   entropic check torch-results.jsonl --against verification/vectors/ --dtype f32
    Check {
        /// Results, JSON Lines with an `id` per line.
        results: PathBuf,
        /// The vectors folder.
        #[arg(long, value_name = "DIR")]
        against: PathBuf,
        /// Which expected values to compare with.
        #[arg(long, default_value = "f64", value_parser = ["f64", "f32"])]
        dtype: String,
    },
    /// Generate the derivation pages and figures (docs/derivations/).
    ///
    /// Example:
    ///   entropic docs --out docs/
    Docs {
        /// The docs folder (pages go to OUT/derivations/).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify { extensive, json, seed } => verify(extensive, json.as_deref(), seed),
        Command::Eval {
            input,
            output,
            reference,
        } => eval(input.as_deref(), output.as_deref(), reference),
        Command::Vectors { out } => vectors(&out),
        Command::Check {
            results,
            against,
            dtype,
        } => check(&results, &against, &dtype),
        Command::Docs { out } => match entropic_verify::derivations::generate(&out) {
            Ok(files) => {
                println!(
                    "wrote {} files under {}",
                    files.len(),
                    out.join("derivations").display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fatal(e),
        },
    }
}

fn fatal(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("entropic: {msg}");
    ExitCode::from(2)
}

fn verify(extensive: bool, json_path: Option<&Path>, seed: u64) -> ExitCode {
    let bar = indicatif::ProgressBar::new(1);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} claim groups {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let config = entropic_verify::Config { seed, extensive };
    let report = entropic_verify::run_with_progress(&config, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    print!("{}", report.to_table());
    if let Some(path) = json_path
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        return fatal(format!("cannot write {}: {e}", path.display()));
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn eval(input: Option<&Path>, output: Option<&Path>, reference: bool) -> ExitCode {
    let (reader, base): (Box<dyn BufRead>, PathBuf) = match input {
        None => (Box::new(std::io::stdin().lock()), PathBuf::from(".")),
        Some(p) if p == Path::new("-") => (Box::new(std::io::stdin().lock()), PathBuf::from(".")),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => (
                Box::new(std::io::BufReader::new(f)),
                p.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            ),
            Err(e) => return fatal(format!("cannot open {}: {e}", p.display())),
        },
    };
    let mut out: Box<dyn Write> = match output {
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => return fatal(format!("cannot create {}: {e}", p.display())),
        },
    };
    let mut failed = 0usize;
    for (i, line) in reader.lines().enumerate() {
        let lineno = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => return fatal(format!("line {lineno}: cannot read input: {e}")),
        };
        if line.trim().is_empty() {
            continue;
        }
        let (id, result) = if reference {
            eval_line_reference(&line, &base, lineno)
        } else {
            eval_line(&line, &base, lineno)
        };
        let record = match result {
            Ok(mut m) => {
                let mut r = Map::new();
                r.insert("id".into(), id);
                r.append(&mut m);
                Value::Object(r)
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "entropic eval: line {lineno}, case {id}, field {}: {}",
                    e.field, e.message
                );
                json!({"id": id, "error": e.message, "line": lineno, "field": e.field})
            }
        };
        if writeln!(out, "{record}").is_err() {
            return fatal("cannot write output");
        }
    }
    if out.flush().is_err() {
        return fatal("cannot write output");
    }
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn vectors(out: &Path) -> ExitCode {
    let bar = indicatif::ProgressBar::new_spinner();
    let files = match entropic_cli::vectors::render(|id| bar.set_message(id.to_string())) {
        Ok(f) => f,
        Err(e) => return fatal(e),
    };
    bar.finish_and_clear();
    if let Err(e) = std::fs::create_dir_all(out) {
        return fatal(format!("cannot create {}: {e}", out.display()));
    }
    for (name, text) in &files {
        if let Err(e) = std::fs::write(out.join(name), text) {
            return fatal(format!("cannot write {}: {e}", out.join(name).display()));
        }
    }
    println!("wrote {} files to {}", files.len(), out.display());
    ExitCode::SUCCESS
}

fn read_jsonl(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1)))
        .collect()
}

fn check(results: &Path, against: &Path, dtype: &str) -> ExitCode {
    let dtype = if dtype == "f32" {
        entropic_cli::oracle::Dtype::F32
    } else {
        entropic_cli::oracle::Dtype::F64
    };
    let results = match read_jsonl(results) {
        Ok(r) => r,
        Err(e) => return fatal(e),
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(against) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) => return fatal(format!("cannot read {}: {e}", against.display())),
    };
    files.sort();
    let mut vectors = Vec::new();
    for f in &files {
        match read_jsonl(f) {
            Ok(mut v) => vectors.append(&mut v),
            Err(e) => return fatal(e),
        }
    }
    if vectors.is_empty() {
        return fatal(format!("no vectors (*.jsonl) in {}", against.display()));
    }
    let report = entropic_cli::check::check(&results, &vectors, dtype);
    print!("{}", report.to_table());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
