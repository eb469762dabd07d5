//! The sweep's pictures: one SVG per figure against N (plotters' SVG backend; text is left to
//! the viewer's fonts, so drawing needs none).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

use crate::figures::{FIGURES, Figure, RunFigures};

/// Draws every figure of the sweep into `dir/scale-<key>.svg`; returns the files written.
pub fn draw_all(dir: &Path, runs: &[RunFigures]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    FIGURES
        .iter()
        .map(|f| {
            let path = dir.join(format!("scale-{}.svg", f.key));
            draw(&path, f, runs).with_context(|| format!("drawing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

fn draw(path: &Path, figure: &Figure, runs: &[RunFigures]) -> anyhow::Result<()> {
    let points: Vec<(f64, f64)> = runs
        .iter()
        .map(|r| (r.nodes as f64, (figure.value)(r)))
        .collect();
    let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let goal: Vec<(f64, f64)> = figure
        .goal
        .map(|g| vec![(0.0, g(0.0)), (x_max, g(x_max))])
        .unwrap_or_default();
    let y_max = points.iter().chain(&goal).map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let profiles = runs.first().map_or(0, |r| r.profiles);

    let root = SVGBackend::new(path, (640, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} ({profiles} profiles)", figure.title),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max * 1.05, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("simulated nodes N")
        .y_desc(figure.key)
        .draw()?;
    chart
        .draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)).point_size(4))?
        .label("measured")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if !goal.is_empty() {
        chart
            .draw_series(DashedLineSeries::new(
                goal.iter().copied(),
                6,
                4,
                RED.stroke_width(1),
            ))?
            .label("goal (issue 12)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
