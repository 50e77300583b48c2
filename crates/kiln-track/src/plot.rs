//! Learning-curve and bar-chart figures, each written as both PNG and SVG.
//!
//! Text is drawn with DejaVu Sans, embedded in the crate, so figures render
//! the same on a machine without any system fonts.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::atomic::{commit_temp, temp_sibling, write_bytes_atomic};
use crate::error::TrackError;
use crate::stats;

/// DejaVu Sans (Bitstream Vera license, see `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The family name under which the embedded font is registered.
const FAMILY: &str = "sans-serif";
/// Grid size for seeds whose union of logged steps is larger than this.
const MAX_GRID_POINTS: usize = 500;
/// Matplotlib's "tab10" palette: distinguishable, colour-blind friendlier.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One line of a learning-curve plot: an algorithm (or configuration) run
/// with several seeds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    /// Legend entry, e.g. `"PPO"`.
    pub label: String,
    /// One `(step, value)` series per seed, e.g. from [`RunRecord::series`](crate::RunRecord::series).
    pub runs: Vec<Vec<(f64, f64)>>,
}

/// Title, axis labels and pixel size of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Figure title.
    pub title: String,
    /// Label of the horizontal axis.
    pub x_label: String,
    /// Label of the vertical axis.
    pub y_label: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            title: String::new(),
            x_label: "environment steps".to_string(),
            y_label: "return".to_string(),
            width: 900,
            height: 600,
        }
    }
}

/// One bar of a bar chart: a mean with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Bar height.
    pub mean: f64,
    /// Lower end of the error whisker (`NaN` for none).
    pub ci_low: f64,
    /// Upper end of the error whisker (`NaN` for none).
    pub ci_high: f64,
}

/// The mean over seeds of one curve on a common step grid, with its 95%
/// confidence band.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanBand {
    /// Number of seeds averaged.
    pub seeds: usize,
    /// Grid steps, increasing.
    pub steps: Vec<f64>,
    /// Mean over seeds at each step.
    pub mean: Vec<f64>,
    /// Lower end of the Student-t 95% interval (equal to `mean` with one seed).
    pub low: Vec<f64>,
    /// Upper end of the Student-t 95% interval (equal to `mean` with one seed).
    pub high: Vec<f64>,
}

/// Averages seeds on a common grid: the steps where every seed has data
/// (from the largest first step to the smallest last step). The grid is the
/// union of the seeds' logged steps in that range, or 500 evenly spaced
/// steps if that union is larger; each seed is interpolated linearly onto
/// it. Non-finite points are ignored.
///
/// Returns `None` if there is no seed with data, or the seeds share no step range.
pub fn mean_band(runs: &[Vec<(f64, f64)>]) -> Option<MeanBand> {
    let seeds: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|run| {
            let mut pts: Vec<(f64, f64)> = run
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            pts
        })
        .collect();
    if seeds.is_empty() || seeds.iter().any(Vec::is_empty) {
        return None;
    }
    let lo = seeds
        .iter()
        .map(|s| s[0].0)
        .fold(f64::NEG_INFINITY, f64::max);
    let hi = seeds
        .iter()
        .map(|s| s[s.len() - 1].0)
        .fold(f64::INFINITY, f64::min);
    if lo > hi {
        return None;
    }
    let mut grid: Vec<f64> = seeds
        .iter()
        .flatten()
        .map(|p| p.0)
        .filter(|x| (lo..=hi).contains(x))
        .collect();
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    if grid.len() > MAX_GRID_POINTS {
        let last = (MAX_GRID_POINTS - 1) as f64;
        grid = (0..MAX_GRID_POINTS)
            .map(|i| lo + (hi - lo) * i as f64 / last)
            .collect();
    }
    let mut band = MeanBand {
        seeds: seeds.len(),
        steps: Vec::with_capacity(grid.len()),
        mean: Vec::with_capacity(grid.len()),
        low: Vec::with_capacity(grid.len()),
        high: Vec::with_capacity(grid.len()),
    };
    for x in grid {
        let values: Vec<f64> = seeds.iter().map(|s| interpolate(s, x)).collect();
        let m = stats::mean(&values);
        let (l, h) = if values.len() >= 2 {
            stats::t_ci95(&values)
        } else {
            (m, m)
        };
        band.steps.push(x);
        band.mean.push(m);
        band.low.push(l);
        band.high.push(h);
    }
    Some(band)
}

/// Linear interpolation of sorted, non-empty points at `x` (clamped to the ends).
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let i = points.partition_point(|p| p.0 < x);
    if i == 0 {
        return points[0].1;
    }
    if i == points.len() {
        return points[i - 1].1;
    }
    let (x0, y0) = points[i - 1];
    let (x1, y1) = points[i];
    if x1 == x0 {
        return y1;
    }
    y0 + (y1 - y0) * (x - x0) / (x1 - x0)
}

/// Plots, for each curve, the mean over its seeds (see [`mean_band`]) with a
/// shaded Student-t 95% confidence band (no band for a single seed), and
/// writes `<path_stem>.png` and `<path_stem>.svg` atomically.
///
/// # Errors
/// [`TrackError::Plot`] if there are no curves, or a curve has no finite
/// data or its seeds share no step range; [`TrackError::Io`] if a file
/// cannot be written.
pub fn learning_curves(
    curves: &[Curve],
    opts: &PlotOptions,
    path_stem: &Path,
) -> Result<(), TrackError> {
    if curves.is_empty() {
        return Err(TrackError::plot(path_stem, "no curves to plot"));
    }
    let mut bands = Vec::with_capacity(curves.len());
    for curve in curves {
        let band = mean_band(&curve.runs).ok_or_else(|| {
            TrackError::plot(
                path_stem,
                format!(
                    "curve {:?} has a seed without finite data points, or its seeds share no step range",
                    curve.label
                ),
            )
        })?;
        bands.push((curve.label.as_str(), band));
    }
    let figure = LearningCurves {
        bands: &bands,
        opts,
    };
    save_figure(&figure, (opts.width, opts.height), path_stem)
}

/// A bar chart of means with confidence-interval whiskers (a whisker is left
/// out where its ends are not finite), written as `<path_stem>.png` and
/// `<path_stem>.svg` (900×600) atomically.
///
/// # Errors
/// [`TrackError::Plot`] if there are no bars or a mean is not finite;
/// [`TrackError::Io`] if a file cannot be written.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    bars: &[Bar],
    path_stem: &Path,
) -> Result<(), TrackError> {
    if bars.is_empty() {
        return Err(TrackError::plot(path_stem, "no bars to plot"));
    }
    if let Some(bar) = bars.iter().find(|b| !b.mean.is_finite()) {
        return Err(TrackError::plot(
            path_stem,
            format!("bar {:?} has a non-finite mean", bar.label),
        ));
    }
    let figure = BarChart {
        title,
        y_label,
        bars,
    };
    let defaults = PlotOptions::default();
    save_figure(&figure, (defaults.width, defaults.height), path_stem)
}

/// Something that can draw itself on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws `figure` to `<stem>.png` (via a temporary file renamed into place)
/// and `<stem>.svg` (rendered to memory, then written atomically).
fn save_figure(figure: &impl Figure, size: (u32, u32), path_stem: &Path) -> Result<(), TrackError> {
    register_embedded_font().map_err(|m| TrackError::plot(path_stem, m))?;
    if size.0 < 100 || size.1 < 100 {
        return Err(TrackError::plot(
            path_stem,
            "figure must be at least 100×100 pixels",
        ));
    }

    let png = with_extension(path_stem, "png");
    let tmp = temp_sibling(&png, ".png")?;
    let drawn = {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        figure
            .draw(&root)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    let committed = drawn
        .map_err(|m| TrackError::plot(&png, m))
        .and_then(|()| {
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| TrackError::io(&tmp, e))
        })
        .and_then(|()| commit_temp(&tmp, &png));
    if committed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    committed?;

    let svg = with_extension(path_stem, "svg");
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        figure
            .draw(&root)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
            .map_err(|m| TrackError::plot(&svg, m))?;
    }
    write_bytes_atomic(&svg, text.as_bytes())
}

/// `stem` with `.ext` appended (not replacing any dot already in the name).
fn with_extension(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Registers the embedded font as `sans-serif`, once per process.
fn register_embedded_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())
        })
        .clone()
}

/// A short axis label: `5000`, `15k`, `1.5M`, `0.25`, `3.0e-4`.
fn tick_label(v: f64) -> String {
    fn trimmed(text: String) -> String {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    }
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 1e6 {
        format!("{}M", trimmed(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trimmed(format!("{:.2}", v / 1e3)))
    } else if a < 1e-2 {
        format!("{v:.1e}")
    } else {
        trimmed(format!("{v:.3}"))
    }
}

/// The axis range for data in `[low, high]`, widened by `pad` times the span
/// on each side (or by ±1 around a single value). Fails if the range is not
/// finite (values near `f64::MAX`), which plotters cannot lay out.
fn axis_range(low: f64, high: f64, pad: f64) -> Result<(f64, f64), String> {
    let span = high - low;
    let (lo, hi) = if span > 0.0 {
        (low - pad * span, high + pad * span)
    } else {
        (low - 1.0, high + 1.0)
    };
    if lo.is_finite() && hi.is_finite() && (hi - lo).is_finite() {
        Ok((lo, hi))
    } else {
        Err(format!("values from {low} to {high} are too large to plot"))
    }
}

struct LearningCurves<'a> {
    bands: &'a [(&'a str, MeanBand)],
    opts: &'a PlotOptions,
}

impl Figure for LearningCurves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let bands = self.bands;
        let fold = |f: fn(&MeanBand) -> f64, init: f64, pick: fn(f64, f64) -> f64| {
            bands.iter().map(|(_, b)| f(b)).fold(init, pick)
        };
        let x0 = fold(|b| b.steps[0], f64::INFINITY, f64::min);
        let x1 = fold(|b| b.steps[b.steps.len() - 1], f64::NEG_INFINITY, f64::max);
        let y0 = fold(
            |b| b.low.iter().copied().fold(f64::INFINITY, f64::min),
            f64::INFINITY,
            f64::min,
        );
        let y1 = fold(
            |b| b.high.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            f64::NEG_INFINITY,
            f64::max,
        );
        let (x0, x1) = axis_range(x0, x1, 0.0)?;
        let (y0, y1) = axis_range(y0, y1, 0.05)?;

        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.opts.title, (FAMILY, 26))
            .margin(20)
            .margin_right(40)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.opts.x_label.as_str())
            .y_desc(self.opts.y_label.as_str())
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .bold_line_style(RGBColor(225, 225, 225))
            .max_light_lines(0)
            .draw()
            .map_err(err)?;

        // All bands first, so that no band veils another curve's line.
        for (i, (_, band)) in bands.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if band.seeds >= 2 {
                let outline: Vec<(f64, f64)> = band
                    .steps
                    .iter()
                    .copied()
                    .zip(band.high.iter().copied())
                    .chain(
                        band.steps
                            .iter()
                            .copied()
                            .zip(band.low.iter().copied())
                            .rev(),
                    )
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(0.2).filled(),
                    )))
                    .map_err(err)?;
            }
        }
        for (i, (label, band)) in bands.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let line = band.steps.iter().copied().zip(band.mean.iter().copied());
            let legend = if band.seeds == 1 {
                (*label).to_string()
            } else {
                format!("{label} ({} seeds)", band.seeds)
            };
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(err)?
                .label(legend)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FAMILY, 15))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

struct BarChart<'a> {
    title: &'a str,
    y_label: &'a str,
    bars: &'a [Bar],
}

impl Figure for BarChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let finite = |v: f64| v.is_finite().then_some(v);
        let values = self
            .bars
            .iter()
            .flat_map(|b| [Some(b.mean), finite(b.ci_low), finite(b.ci_high)])
            .flatten()
            .chain([0.0]);
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        let (y0, y1) = axis_range(lo, hi, 0.05)?;
        let n = self.bars.len() as f64;

        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FAMILY, 26))
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n - 0.5, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|_| String::new())
            .y_desc(self.y_label)
            .y_label_formatter(&|v| tick_label(*v))
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .bold_line_style(RGBColor(225, 225, 225))
            .max_light_lines(0)
            .draw()
            .map_err(err)?;

        let base = 0.0f64.clamp(y0, y1);
        for (i, bar) in self.bars.iter().enumerate() {
            let x = i as f64;
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.35, base), (x + 0.35, bar.mean)],
                    color.mix(0.85).filled(),
                )))
                .map_err(err)?;
            if let (Some(l), Some(h)) = (finite(bar.ci_low), finite(bar.ci_high)) {
                let style = BLACK.stroke_width(2);
                let whisker = [
                    vec![(x, l), (x, h)],
                    vec![(x - 0.1, l), (x + 0.1, l)],
                    vec![(x - 0.1, h), (x + 0.1, h)],
                ];
                chart
                    .draw_series(whisker.into_iter().map(|p| PathElement::new(p, style)))
                    .map_err(err)?;
            }
            let (px, py) = chart.backend_coord(&(x, y0));
            let style =
                TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(bar.label.clone(), (px, py + 8), style))
                .map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_and_clamping() {
        let pts = [(0.0, 0.0), (10.0, 100.0), (20.0, 0.0)];
        assert_eq!(interpolate(&pts, 5.0), 50.0);
        assert_eq!(interpolate(&pts, 15.0), 50.0);
        assert_eq!(interpolate(&pts, 10.0), 100.0);
        assert_eq!(interpolate(&pts, -3.0), 0.0);
        assert_eq!(interpolate(&pts, 25.0), 0.0);
    }

    #[test]
    fn mean_band_on_overlapping_range() {
        // Seed A logs at 0, 10, 20, 30; seed B at 5, 15, 25 (an interrupted
        // run). The common range is [5, 25]; the grid is the union of steps in it.
        let a = vec![(0.0, 0.0), (10.0, 10.0), (20.0, 20.0), (30.0, 30.0)];
        let b = vec![(25.0, 35.0), (5.0, 15.0), (15.0, 25.0)]; // unsorted on purpose
        let band = mean_band(&[a, b]).unwrap();
        assert_eq!(band.seeds, 2);
        assert_eq!(band.steps, vec![5.0, 10.0, 15.0, 20.0, 25.0]);
        // A is y = x, B is y = x + 10, so the mean is x + 5 and the spread
        // of two values 10 apart gives stderr 5 and half-width 12.706 * 5.
        for (i, x) in band.steps.iter().enumerate() {
            assert!((band.mean[i] - (x + 5.0)).abs() < 1e-12);
            assert!((band.high[i] - band.mean[i] - 12.706 * 5.0).abs() < 1e-9);
            assert!((band.mean[i] - band.low[i] - 12.706 * 5.0).abs() < 1e-9);
        }
    }

    #[test]
    fn mean_band_edge_cases() {
        let one = mean_band(&[vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)]]).unwrap();
        assert_eq!(one.steps, vec![0.0, 2.0]);
        assert_eq!(one.low, one.mean);
        assert!(mean_band(&[]).is_none());
        assert!(mean_band(&[vec![(0.0, 1.0)], vec![]]).is_none());
        assert!(mean_band(&[vec![(0.0, 1.0), (1.0, 1.0)], vec![(2.0, 1.0), (3.0, 1.0)]]).is_none());
        let long: Vec<(f64, f64)> = (0..2000).map(|i| (f64::from(i), 1.0)).collect();
        let band = mean_band(&[long.clone(), long]).unwrap();
        assert_eq!(band.steps.len(), MAX_GRID_POINTS);
        assert_eq!(band.steps[0], 0.0);
        assert_eq!(band.steps[MAX_GRID_POINTS - 1], 1999.0);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(5000.0), "5000");
        assert_eq!(tick_label(15000.0), "15k");
        assert_eq!(tick_label(-1_500_000.0), "-1.5M");
        assert_eq!(tick_label(450.0), "450");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.0003), "3.0e-4");
    }

    #[test]
    fn huge_values_are_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("huge");
        let curve = Curve {
            label: "overflow".into(),
            runs: vec![vec![(0.0, -f64::MAX), (1.0, f64::MAX)]],
        };
        let err = learning_curves(&[curve], &PlotOptions::default(), &stem).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert_eq!(axis_range(2.0, 2.0, 0.05), Ok((1.0, 3.0)));
        assert_eq!(axis_range(0.0, 10.0, 0.1), Ok((-1.0, 11.0)));
    }

    #[test]
    fn stem_gets_extension_appended() {
        assert_eq!(
            with_extension(Path::new("out/ppo.v1"), "png"),
            PathBuf::from("out/ppo.v1.png")
        );
    }

    #[test]
    fn errors_name_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("empty");
        let err = learning_curves(&[], &PlotOptions::default(), &stem).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let curve = Curve {
            label: "nothing".into(),
            runs: vec![vec![]],
        };
        let err = learning_curves(&[curve], &PlotOptions::default(), &stem).unwrap_err();
        assert!(err.to_string().contains("nothing"), "{err}");
        let bar = Bar {
            label: "nan".into(),
            mean: f64::NAN,
            ci_low: 0.0,
            ci_high: 1.0,
        };
        assert!(bar_chart("t", "y", &[bar], &stem).is_err());
        assert!(!with_extension(&stem, "png").exists());
    }
}
