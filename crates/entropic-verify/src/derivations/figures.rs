//! SVG figures drawn with plotters from the production code. Deterministic:
//! plotters' SVG backend writes integer pixel coordinates, text is laid out
//! with its built-in size estimate (no system fonts), labels use fixed
//! formatting.

use entropic::{
    Batch, BiTemperedLogisticLoss, Reduction, SigmoidFocalLoss, Targets, exp_t, log_t, softplus, tempered_softmax,
};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One figure.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// File name under `derivations/figures/`.
    pub file: &'static str,
    /// Caption (plain text).
    pub caption: &'static str,
    /// Draws the SVG.
    pub draw: fn() -> Result<String, String>,
}

/// Every figure.
pub const FIGURES: &[Figure] = &[
    Figure {
        file: "focal_loss.svg",
        caption: "focal loss against p_t for γ ∈ {0, 0.5, 1, 2, 5} (γ = 0 is the cross-entropy)",
        draw: focal_loss,
    },
    Figure {
        file: "log_t.svg",
        caption: "the tempered logarithm log_t for t ∈ {0.2, 0.5, 0.8, 1, 1.5}",
        draw: log_t_figure,
    },
    Figure {
        file: "exp_t.svg",
        caption: "the tempered exponential exp_t: finite support for t < 1, heavy tails for t > 1 (linear and log scale)",
        draw: exp_t_figure,
    },
    Figure {
        file: "tempered_softmax.svg",
        caption: "the tempered softmax of one logit vector at t ∈ {0.5, 1, 1.5, 4}",
        draw: tempered_softmax_figure,
    },
    Figure {
        file: "bi_tempered_vs_logistic.svg",
        caption: "the bi-tempered loss is bounded by 1/(1 − t1); the logistic loss grows linearly in the margin",
        draw: bi_tempered_figure,
    },
    Figure {
        file: "log_t_convergence.svg",
        caption: "|log_t(x) − ln x| against 1 − t (log-log): first order, slope 1, coefficient (ln x)²/2",
        draw: convergence_figure,
    },
];

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

const W: u32 = 800;
const H: u32 = 500;
const FONT: &str = "sans-serif";

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Draws into a string with `f`, presenting the root at the end.
fn svg(
    size: (u32, u32),
    f: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        f(&root)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Keeps the points inside `[lo, hi]` (finite), so that a curve stops at the plot's edge.
fn clipped(points: impl IntoIterator<Item = (f64, f64)>, lo: f64, hi: f64) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .filter(|(_, y)| y.is_finite() && *y >= lo && *y <= hi)
        .collect()
}

fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|i| lo + (hi - lo) * i as f64 / n as f64).collect()
}

fn legend_line(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
}

fn focal_value(gamma: f64, p_t: f64) -> Result<f64, String> {
    let x = (p_t / (1.0 - p_t)).ln();
    let loss = SigmoidFocalLoss::new(None, gamma)
        .map_err(err)?
        .with_reduction(Reduction::Sum);
    loss.loss(Batch::single_row(&[x]), Batch::single_row(&[1.0f64]))
        .map_err(err)?
        .reduced
        .ok_or_else(|| "no reduced value".to_string())
}

fn focal_loss() -> Result<String, String> {
    svg((W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Focal loss −(1 − p_t)^γ ln p_t", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..5f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("p_t (probability of the true class)")
            .y_desc("loss")
            .y_labels(6)
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(err)?;
        for (i, gamma) in [0.0, 0.5, 1.0, 2.0, 5.0].into_iter().enumerate() {
            let pts: Vec<(f64, f64)> = grid(0.005, 0.995, 198)
                .into_iter()
                .map(|p| focal_value(gamma, p).map(|v| (p, v)))
                .collect::<Result<_, _>>()?;
            let c = COLORS[i];
            chart
                .draw_series(LineSeries::new(clipped(pts, 0.0, 5.0), c.stroke_width(3)))
                .map_err(err)?
                .label(format!("γ = {gamma}"))
                .legend(legend_line(c));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 17))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

const TEMPS: [f64; 5] = [0.2, 0.5, 0.8, 1.0, 1.5];

fn log_t_figure() -> Result<String, String> {
    svg((W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Tempered logarithm log_t(x) = (x^(1−t) − 1)/(1 − t)", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..4f64, -4f64..3f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("x")
            .y_desc("log_t(x)")
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(err)?;
        for (i, t) in TEMPS.into_iter().enumerate() {
            let pts = grid(0.0, 1.0, 600)
                .into_iter()
                .map(|s| (4.0 * s * s * s, log_t(4.0 * s * s * s, t)));
            let c = COLORS[i];
            chart
                .draw_series(LineSeries::new(clipped(pts, -4.0, 3.0), c.stroke_width(3)))
                .map_err(err)?
                .label(if t == 1.0 {
                    "t = 1 (ln)".to_string()
                } else {
                    format!("t = {t}")
                })
                .legend(legend_line(c));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 17))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

fn exp_t_figure() -> Result<String, String> {
    svg((W + 200, H), |root| {
        let (left, right) = root.split_horizontally(500);
        let mut lin = ChartBuilder::on(&left)
            .caption("exp_t(x), linear scale", (FONT, 22))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(54)
            .build_cartesian_2d(-5f64..2f64, 0f64..4f64)
            .map_err(err)?;
        lin.configure_mesh()
            .x_desc("x")
            .y_desc("exp_t(x)")
            .y_labels(5)
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(err)?;
        for (i, t) in TEMPS.into_iter().enumerate() {
            let pts = grid(-5.0, 2.0, 700).into_iter().map(|x| (x, exp_t(x, t)));
            let c = COLORS[i];
            lin.draw_series(LineSeries::new(clipped(pts, 0.0, 4.0), c.stroke_width(3)))
                .map_err(err)?
                .label(if t == 1.0 {
                    "t = 1 (exp)".to_string()
                } else {
                    format!("t = {t}")
                })
                .legend(legend_line(c));
        }
        lin.configure_series_labels()
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        let mut log = ChartBuilder::on(&right)
            .caption("tails, log scale", (FONT, 22))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(-12f64..1f64, (1e-5f64..10f64).log_scale())
            .map_err(err)?;
        log.configure_mesh()
            .x_desc("x")
            .y_desc("exp_t(x)")
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(err)?;
        for (i, t) in TEMPS.into_iter().enumerate() {
            let pts = grid(-12.0, 1.0, 650).into_iter().map(|x| (x, exp_t(x, t)));
            log.draw_series(LineSeries::new(clipped(pts, 1e-5, 10.0), COLORS[i].stroke_width(3)))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// The logit vector of the tempered-softmax figure.
pub const SOFTMAX_LOGITS: [f64; 5] = [3.0, 1.5, 0.5, -1.0, -3.0];

fn tempered_softmax_figure() -> Result<String, String> {
    svg((W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("softmax_t(a), a = (3, 1.5, 0.5, −1, −3)", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..4.5f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(5)
            .x_desc("class i")
            .y_desc("p_i")
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(err)?;
        let temps = [0.5, 1.0, 1.5, 4.0];
        let width = 0.19;
        for (k, t) in temps.into_iter().enumerate() {
            let p = tempered_softmax(&SOFTMAX_LOGITS, t).map_err(err)?;
            let c = COLORS[k];
            let offset = (k as f64 - 1.5) * width;
            chart
                .draw_series(p.iter().enumerate().map(|(i, &v)| {
                    let x0 = i as f64 + offset - width / 2.0;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], c.filled())
                }))
                .map_err(err)?
                .label(if t == 1.0 {
                    "t = 1 (softmax)".to_string()
                } else {
                    format!("t = {t}")
                })
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], c.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 17))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

fn bi_tempered_value(t1: f64, t2: f64, m: f64) -> Result<f64, String> {
    let loss = BiTemperedLogisticLoss::new(t1, t2)
        .map_err(err)?
        .with_reduction(Reduction::Sum);
    loss.loss(Batch::single_row(&[0.0, m]), Targets::<f64>::Classes(&[1]))
        .map_err(err)?
        .reduced
        .ok_or_else(|| "no reduced value".to_string())
}

fn bi_tempered_figure() -> Result<String, String> {
    svg((W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Two classes, activations (0, m), true class 1", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(-10f64..10f64, 0f64..8f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("margin m (negative: misclassified)")
            .y_desc("loss")
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(err)?;
        let ms = grid(-10.0, 10.0, 400);
        let logistic = ms.iter().map(|&m| (m, softplus(-m)));
        chart
            .draw_series(LineSeries::new(clipped(logistic, 0.0, 8.0), BLACK.stroke_width(3)))
            .map_err(err)?
            .label("logistic ln(1 + e^(−m))")
            .legend(legend_line(BLACK));
        for (i, (t1, t2)) in [(0.2, 1.0), (0.5, 1.0), (0.8, 1.2), (0.5, 2.0)].into_iter().enumerate() {
            let pts: Vec<(f64, f64)> = ms
                .iter()
                .map(|&m| bi_tempered_value(t1, t2, m).map(|v| (m, v)))
                .collect::<Result<_, _>>()?;
            let c = COLORS[i];
            chart
                .draw_series(LineSeries::new(clipped(pts, 0.0, 8.0), c.stroke_width(3)))
                .map_err(err)?
                .label(format!("bi-tempered t1 = {t1}, t2 = {t2}"))
                .legend(legend_line(c));
            let bound = 1.0 / (1.0 - t1);
            chart
                .draw_series(LineSeries::new(vec![(-10.0, bound), (-7.0, bound)], c.stroke_width(1)))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

fn convergence_figure() -> Result<String, String> {
    svg((W, H), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("log_t(x) → ln x as t → 1", (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d((1e-9f64..0.3f64).log_scale(), (1e-11f64..10f64).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("1 − t")
            .y_desc("|log_t(x) − ln x|")
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(err)?;
        let deltas: Vec<f64> = (0..=16).map(|k| 10f64.powf(-1.0 - 0.5 * k as f64)).collect();
        for (i, x) in [1.5f64, 4.0, 30.0, 1000.0].into_iter().enumerate() {
            let c = COLORS[i];
            let measured = deltas.iter().map(|&d| (d, (log_t(x, 1.0 - d) - x.ln()).abs()));
            chart
                .draw_series(
                    clipped(measured, 1e-11, 10.0)
                        .into_iter()
                        .map(|p| Circle::new(p, 5, c.filled())),
                )
                .map_err(err)?
                .label(format!("x = {x}: measured (dots), δ·(ln x)²/2 (line)"))
                .legend(legend_line(c));
            let coef = x.ln().powi(2) / 2.0;
            let predicted = [1e-9, 0.3].map(|d: f64| (d, coef * d));
            chart
                .draw_series(LineSeries::new(clipped(predicted, 1e-11, 10.0), c.stroke_width(2)))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}
