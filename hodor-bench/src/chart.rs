//! The PNG chart: throughput by store and thread count, one panel per workload.
//!
//! Drawn with plotters' bitmap backend and its pure-Rust `ab_glyph` text rendering, with the
//! DejaVu Sans font compiled in, so it needs no system font library.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::results::{Results, Workload};
use crate::stores::Kind;

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1600;
const HEIGHT: u32 = 1000;
/// One colour per thread count (1, 2, ...).
const COLORS: [RGBColor; 4] = [
    RGBColor(0x4c, 0x72, 0xb0),
    RGBColor(0xdd, 0x84, 0x52),
    RGBColor(0x55, 0xa8, 0x68),
    RGBColor(0xc4, 0x4e, 0x52),
];

fn register_font() -> Result<(), String> {
    plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans font did not load".to_owned())
}

/// Draws the chart of the `plan.target_keys`, 64-byte cell to `path` (PNG).
pub fn draw(r: &Results, path: &Path) -> Result<(), String> {
    register_font()?;
    let keys = r.plan.target_keys;
    let workloads: Vec<Workload> = [
        Workload::GetHit,
        Workload::Mix95,
        Workload::Mix50,
        Workload::SetNew,
    ]
    .into_iter()
    .filter(|&w| {
        r.throughput
            .iter()
            .any(|t| t.workload == w && t.keys == keys)
    })
    .collect();
    let threads = r.plan.threads.clone();
    let kinds = Kind::ALL;

    let canvas = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| format!("drawing the chart failed: {e:?}");
    canvas.fill(&WHITE).map_err(err)?;
    let title = format!(
        "Throughput, {} keys, 64 B values (million ops/s, median of {} runs; {})",
        crate::report::count(keys),
        r.plan.reps,
        r.machine.cpu
    );
    let root = canvas.titled(&title, (FONT, 26).into_font()).map_err(err)?;
    let (legend_area, plots) = root.split_vertically(40);
    for (i, &t) in threads.iter().enumerate() {
        let x = 20 + i as i32 * 160;
        let color = COLORS[i % COLORS.len()];
        legend_area
            .draw(&Rectangle::new([(x, 10), (x + 24, 30)], color.filled()))
            .map_err(err)?;
        legend_area
            .draw(&Text::new(
                format!("{t} thread{}", if t == 1 { "" } else { "s" }),
                (x + 32, 12),
                (FONT, 20).into_font(),
            ))
            .map_err(err)?;
    }
    let panels = plots.split_evenly((2, 2));
    for (panel, &w) in panels.iter().zip(&workloads) {
        let value = |k: Kind, t: usize| r.throughput(w, keys, 64, t, k).map(|s| s.median);
        let top = kinds
            .iter()
            .flat_map(|&k| threads.iter().filter_map(move |&t| value(k, t)))
            .fold(0.0f64, f64::max)
            .max(0.001)
            * 1.18;
        let mut chart = ChartBuilder::on(panel)
            .caption(w.label(), (FONT, 22).into_font())
            .margin(12)
            .margin_bottom(50)
            .x_label_area_size(0)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..kinds.len() as f64, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .max_light_lines(0)
            .y_desc("Mops/s")
            .label_style((FONT, 16).into_font())
            .axis_desc_style((FONT, 16).into_font())
            .draw()
            .map_err(err)?;
        let width = 0.8 / threads.len() as f64;
        for (i, &k) in kinds.iter().enumerate() {
            for (j, &t) in threads.iter().enumerate() {
                let Some(v) = value(k, t) else { continue };
                let x0 = i as f64 + 0.1 + j as f64 * width;
                let color = COLORS[j % COLORS.len()];
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x0 + width * 0.92, v)],
                        color.filled(),
                    )))
                    .map_err(err)?;
                let label = if v >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        label,
                        (x0 + width * 0.46, v),
                        (FONT, 13)
                            .into_font()
                            .into_text_style(panel)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )))
                    .map_err(err)?;
            }
            // Store names go under the axis, outside the clipped plotting area.
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            canvas
                .draw(&Text::new(
                    k.short(),
                    (px, py + 8),
                    (FONT, 15)
                        .into_font()
                        .into_text_style(&canvas)
                        .pos(Pos::new(HPos::Center, VPos::Top)),
                ))
                .map_err(err)?;
        }
    }
    canvas.present().map_err(err)?;
    Ok(())
}
