mod common;
use common::SplitMix;
use entropic::*;
fn spread_row(rng: &mut SplitMix, c: usize, spread: f64) -> Vec<f64> {
    (0..c).map(|_| rng.uniform(-spread, spread)).collect()
}
#[test]
fn dbg() {
    let mut rng = SplitMix(7);
    for &c in &[2usize, 3, 17] {
        let rows = vec![spread_row(&mut rng, c, 1e4), spread_row(&mut rng, c, 1.0), vec![3.0; c], spread_row(&mut rng, c, 30.0)];
        if c == 17 { eprintln!("{:?}", TemperedSoftmax::new(4.0).unwrap().normalize(&rows[0]).unwrap().iterations); }
    }
}
