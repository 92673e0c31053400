//! The latency plot both demos draw: the slowest successful command that started in each
//! time bucket, one line per series, on a log scale, with a mark where the failover began.

use std::time::Duration;

use plotters::prelude::*;

use crate::support::Op;

/// One line of the plot.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) color: RGBAColor,
    pub(crate) width: u32,
    /// (seconds since the load began, milliseconds), one point per non-empty bucket.
    pub(crate) points: Vec<(f64, f64)>,
}

/// The slowest acknowledged command among `ops` that started in each `bucket` of `load`.
pub(crate) fn slowest_per_bucket<'a>(
    ops: impl Iterator<Item = &'a Op>,
    load: Duration,
    bucket: Duration,
) -> Vec<(f64, f64)> {
    let buckets = (load.as_millis() / bucket.as_millis()) as usize;
    let mut worst = vec![0.0f64; buckets];
    for op in ops.filter(|o| o.error.is_none()) {
        let b = (op.at.as_millis() / bucket.as_millis()) as usize;
        if let Some(w) = worst.get_mut(b) {
            *w = w.max(op.took.as_secs_f64() * 1e3);
        }
    }
    worst
        .into_iter()
        .enumerate()
        .filter(|(_, ms)| *ms > 0.0)
        .map(|(b, ms)| ((b as f64) * bucket.as_secs_f64(), ms))
        .collect()
}

/// Draws `series` into an SVG at `path`, with a vertical mark at `event`.
pub(crate) fn draw_latency(
    path: &str,
    caption: &str,
    load: Duration,
    bucket: Duration,
    event: Duration,
    series: Vec<Series>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..load.as_secs_f64(), (0.1f64..5000f64).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(format!(
            "slowest command per {} ms (ms)",
            bucket.as_millis()
        ))
        .draw()?;
    for Series {
        label,
        color,
        width,
        points,
    } in series
    {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(width)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
    }
    let x = event.as_secs_f64();
    chart.draw_series(LineSeries::new(vec![(x, 0.1), (x, 5000.0)], BLACK.mix(0.4)))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
