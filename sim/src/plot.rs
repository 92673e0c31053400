//! The `--plot` timeline, drawn with `plotters` into an SVG file.

use std::path::Path;

use plotters::prelude::*;

use crate::error::SimError;
use crate::report::{TIMELINE_BUCKET, Timeline};

/// Draws a run's timeline as an SVG: on top the buffer's queue depth, below the errors the
/// application saw and the requests the buffer released, per 100 ms. `baseline`, if given
/// (typically the no-buffer run of the same traffic), adds its errors as a grey line for
/// comparison. The output depends only on its inputs, so it is stable from run to run.
pub fn plot_timeline(
    path: &Path,
    title: &str,
    timeline: &Timeline,
    baseline: Option<(&str, &Timeline)>,
) -> Result<(), SimError> {
    draw(path, title, timeline, baseline).map_err(|e| SimError::Plot {
        path: path.to_path_buf(),
        error: e.to_string(),
    })
}

fn draw(
    path: &Path,
    title: &str,
    timeline: &Timeline,
    baseline: Option<(&str, &Timeline)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let bucket = TIMELINE_BUCKET.as_secs_f64();
    let buckets = timeline
        .errors
        .len()
        .max(baseline.map_or(0, |(_, b)| b.errors.len()))
        .max(1);
    let x_end = buckets as f64 * bucket;
    let series = |values: &[u32]| -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64 * bucket, f64::from(v)))
            .collect()
    };
    let top = |values: &[u32]| values.iter().copied().max().unwrap_or(0).max(1);

    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (upper, lower) = root.split_vertically(300);

    let depth = series(&timeline.queued_max);
    let mut chart = ChartBuilder::on(&upper)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(
            0f64..x_end,
            0f64..f64::from(top(&timeline.queued_max)) * 1.1,
        )?;
    chart
        .configure_mesh()
        .y_desc("queued requests")
        .x_desc("time (s)")
        .x_label_formatter(&seconds)
        .y_label_formatter(&whole)
        .draw()?;
    chart
        .draw_series(AreaSeries::new(depth, 0.0, BLUE.mix(0.3)).border_style(BLUE))?
        .label("queue depth (max per 100 ms)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(0.3).filled()));
    // The phases of a scenario's shutdown: a dashed line and the phase's name at each.
    let depth_top = f64::from(top(&timeline.queued_max)) * 1.1;
    let purple = RGBColor(120, 60, 160);
    for (i, &(at, label)) in timeline.marks.iter().enumerate() {
        let x = at as f64 / 1e9;
        chart.draw_series(DashedLineSeries::new(
            [(x, 0.0), (x, depth_top)],
            4,
            4,
            purple.stroke_width(1),
        ))?;
        // Staggered down the chart, so marks close in time stay readable.
        let y = depth_top * (0.95 - 0.12 * (i % 5) as f64);
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x, y),
            ("sans-serif", 12).into_font().color(&purple),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let mut y_max = top(&timeline.errors).max(top(&timeline.released));
    if let Some((_, b)) = baseline {
        y_max = y_max.max(top(&b.errors));
    }
    let mut chart = ChartBuilder::on(&lower)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_end, 0f64..f64::from(y_max) * 1.1)?;
    chart
        .configure_mesh()
        .y_desc("requests per 100 ms")
        .x_desc("time (s)")
        .x_label_formatter(&seconds)
        .y_label_formatter(&whole)
        .draw()?;
    if let Some((label, b)) = baseline {
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(LineSeries::new(series(&b.errors), grey.stroke_width(2)))?
            .label(format!("errors, {label}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2))
            });
    }
    chart
        .draw_series(LineSeries::new(
            series(&timeline.errors),
            RED.stroke_width(2),
        ))?
        .label("errors")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            series(&timeline.released),
            GREEN.stroke_width(2),
        ))?
        .label("released to retry")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// An axis label in seconds: `2.5`, `5`.
fn seconds(v: &f64) -> String {
    let text = format!("{v:.1}");
    text.strip_suffix(".0").unwrap_or(&text).to_string()
}

/// An axis label for a count.
fn whole(v: &f64) -> String {
    format!("{v:.0}")
}
