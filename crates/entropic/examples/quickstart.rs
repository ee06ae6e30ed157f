//! Prints losses and gradients for a small batch with every loss of the
//! cross-entropy family. Run with
//! `cargo run --release --example quickstart -p entropic`.

use entropic::{
    Batch, BinaryCrossEntropyWithLogits, KlDiv, Reduction, SoftmaxCrossEntropy, Targets, entropy, kl_divergence,
    log_softmax,
};

fn print_grad(name: &str, grad: &[f64], c: usize) {
    println!("  {name} gradient:");
    for row in grad.chunks(c) {
        let cells: Vec<String> = row.iter().map(|g| format!("{g:+.6}")).collect();
        println!("    [{}]", cells.join(", "));
    }
}

fn main() -> Result<(), entropic::Error> {
    let (n, c) = (3, 4);
    let logits = [2.0, 1.0, 0.1, -1.0, 0.5, 2.5, 0.3, 0.0, 1e8, 1e8, 1e8, -30.0];
    let classes = [0usize, 1, 2];
    let batch = Batch::new(&logits, n, c)?;
    println!("logits ({n} x {c}): {logits:?}");

    let ce = SoftmaxCrossEntropy::new().with_label_smoothing(0.1)?;
    let (out, grad) = ce.loss_and_grad(batch, Targets::<f64>::Classes(&classes))?;
    println!("softmax cross-entropy, targets {classes:?}, label_smoothing 0.1, mean:");
    println!("  per sample {:?}", out.unreduced);
    println!("  loss       {:.17}", out.reduced.unwrap_or(f64::NAN));
    print_grad("softmax cross-entropy", &grad, c);

    let labels = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.0];
    let bce = BinaryCrossEntropyWithLogits::new().with_pos_weight(vec![1.0, 2.0, 1.0, 1.0])?;
    let finite_logits: Vec<f64> = logits.iter().map(|&x| x.max(-1e9)).collect();
    let (out, grad) = bce.loss_and_grad(Batch::new(&finite_logits, n, c)?, Batch::new(&labels, n, c)?)?;
    println!("binary cross-entropy with logits, pos_weight [1, 2, 1, 1], mean:");
    println!("  loss       {:.17}", out.reduced.unwrap_or(f64::NAN));
    print_grad("binary cross-entropy", &grad, c);

    let row = [0.5, 1.5, -0.5, 0.0];
    let ln_q = log_softmax(&row)?;
    let p = [0.1, 0.6, 0.1, 0.2];
    let (out, grad) =
        KlDiv::new(Reduction::BatchMean).loss_and_grad(Batch::new(&ln_q, 1, c)?, Batch::new(&p, 1, c)?)?;
    println!("kl_div(log_softmax({row:?}), {p:?}), batchmean:");
    println!("  loss       {:.17}", out.reduced.unwrap_or(f64::NAN));
    print_grad("kl_div", &grad, c);

    let q: Vec<f64> = ln_q.iter().map(|l| l.exp()).collect();
    println!(
        "H(p) = {:.17} nats, KL(p||q) = {:.17} nats",
        entropy(&p)?,
        kl_divergence(&p, &q)?
    );
    Ok(())
}
