mod common;
use common::SplitMix;
use entropic::*;
use num_dual::Dual64;
fn spread_row(rng: &mut SplitMix, c: usize, spread: f64) -> Vec<f64> {
    (0..c).map(|_| rng.uniform(-spread, spread)).collect()
}
#[test]
fn dbg() {
    let temps = [0.1, 0.5, 0.9, 0.99, 1.0, 1.01, 1.5, 2.0, 4.0];
    let mut rng = SplitMix(7);
    for &c in &[2usize, 3, 17, 1000, 100_000] {
        let rows = vec![spread_row(&mut rng, c, 1e4), spread_row(&mut rng, c, 1.0), vec![3.0; c], spread_row(&mut rng, c, 30.0)];
        for (ri, row) in rows.iter().enumerate() {
            let its: Vec<usize> = temps.iter().map(|&t| TemperedSoftmax::new(t).unwrap().normalize(row).unwrap().iterations).collect();
            eprintln!("c={c} row{ri}: {its:?}");
        }
    }
    let a = [1e4_f64, -1e4, 0.0, 9999.0, -5e3];
    let x: Vec<Dual64> = a.iter().enumerate().map(|(i,&v)| if i==0 {Dual64::from_re(v).derivative()} else {Dual64::from_re(v)}).collect();
    let n = TemperedSoftmax::new(1.01).unwrap().normalize(&x).unwrap();
    eprintln!("{:?}", n);
}
