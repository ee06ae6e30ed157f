//! Prints the worst gradient agreements over a few seeds (exploration aid).
fn main() {
    for seed in [2026u64, 7, 1, 2, 3] {
        let r = entropic_verify::run(&entropic_verify::Config { seed, extensive: false });
        let mut v: Vec<_> = r.outcomes.iter().filter(|o| o.id.ends_with(".grad")).collect();
        v.sort_by(|a, b| b.max_error.rel.total_cmp(&a.max_error.rel));
        for o in v.iter().take(3) {
            println!(
                "seed {seed} {} {:.3e} {}",
                o.id,
                o.max_error.rel,
                &o.worst_input[..o.worst_input.len().min(400)]
            );
        }
    }
}
