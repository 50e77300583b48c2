//! Rendering to RGB frames, PNG files and animated GIFs, so users can look at
//! what a policy does. Frames follow Gymnasium's `rgb_array` layouts
//! (CartPole 600×400, Pendulum 500×500); drawing is a few exact rasterizers,
//! no font or GPU dependency.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use thiserror::Error;

use crate::env::{Action, Env};
use crate::error::EnvError;

/// Errors while writing images.
#[derive(Debug, Error)]
pub enum RenderError {
    /// File system error, with the path.
    #[error("cannot write {path}: {source}")]
    Io {
        /// Target path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// PNG encoder error.
    #[error("PNG encoding of {path} failed: {reason}")]
    Png {
        /// Target path.
        path: String,
        /// Encoder message.
        reason: String,
    },
    /// GIF encoder error.
    #[error("GIF encoding of {path} failed: {reason}")]
    Gif {
        /// Target path.
        path: String,
        /// Encoder message.
        reason: String,
    },
    /// No frames, or frames of different sizes.
    #[error("cannot write {path}: {reason}")]
    Frames {
        /// Target path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The environment failed while rolling out an episode.
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// An 8-bit RGB image, row-major, `data.len() == 3 * width * height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixels, `[r, g, b]` per pixel, top row first.
    pub data: Vec<u8>,
}

/// An RGB colour.
pub type Rgb = [u8; 3];

impl RgbImage {
    /// A `width × height` image filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Self {
        let mut data = Vec::with_capacity(3 * width as usize * height as usize);
        for _ in 0..(width as usize * height as usize) {
            data.extend_from_slice(&background);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// The pixel at `(x, y)` (column, row from the top), if inside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = 3 * (y as usize * self.width as usize + x as usize);
        Some([self.data[i], self.data[i + 1], self.data[i + 2]])
    }

    fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            let i = 3 * (y as usize * self.width as usize + x as usize);
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Fill the axis-aligned rectangle `[x0, x1) × [y0, y1)` (pixel coordinates, y down).
    pub fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb) {
        let (xa, xb) = (x0.min(x1).round() as i64, x0.max(x1).round() as i64);
        let (ya, yb) = (y0.min(y1).round() as i64, y0.max(y1).round() as i64);
        for y in ya..yb {
            for x in xa..xb {
                self.put(x, y, c);
            }
        }
    }

    /// Fill a disc of radius `r` centred at `(cx, cy)`.
    pub fn fill_circle(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
        let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                if dx * dx + dy * dy <= r * r {
                    self.put(x, y, c);
                }
            }
        }
    }

    /// Fill a convex polygon (vertices in order, pixel coordinates).
    pub fn fill_convex_polygon(&mut self, pts: &[(f64, f64)], c: Rgb) {
        if pts.len() < 3 {
            return;
        }
        let xmin = pts
            .iter()
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min)
            .floor() as i64;
        let xmax = pts
            .iter()
            .map(|p| p.0)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil() as i64;
        let ymin = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min)
            .floor() as i64;
        let ymax = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil() as i64;
        for y in ymin..=ymax {
            for x in xmin..=xmax {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let mut sign = 0.0_f64;
                let mut inside = true;
                for i in 0..pts.len() {
                    let (ax, ay) = pts[i];
                    let (bx, by) = pts[(i + 1) % pts.len()];
                    let cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax);
                    if cross != 0.0 {
                        if sign == 0.0 {
                            sign = cross.signum();
                        } else if cross.signum() != sign {
                            inside = false;
                            break;
                        }
                    }
                }
                if inside {
                    self.put(x, y, c);
                }
            }
        }
    }

    /// A thick segment from `a` to `b` (a filled rotated rectangle with round caps).
    pub fn draw_segment(&mut self, a: (f64, f64), b: (f64, f64), width: f64, c: Rgb) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        let (nx, ny) = (-dy / len * width / 2.0, dx / len * width / 2.0);
        self.fill_convex_polygon(
            &[
                (a.0 + nx, a.1 + ny),
                (b.0 + nx, b.1 + ny),
                (b.0 - nx, b.1 - ny),
                (a.0 - nx, a.1 - ny),
            ],
            c,
        );
        self.fill_circle(a.0, a.1, width / 2.0, c);
        self.fill_circle(b.0, b.1, width / 2.0, c);
    }

    /// Write the image as an 8-bit RGB PNG.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<(), RenderError> {
        let path = path.as_ref();
        let p = path.display().to_string();
        let file = File::create(path).map_err(|source| RenderError::Io {
            path: p.clone(),
            source,
        })?;
        let mut enc = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| RenderError::Png {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        w.write_image_data(&self.data)
            .map_err(|e| RenderError::Png {
                path: p.clone(),
                reason: e.to_string(),
            })?;
        w.finish().map_err(|e| RenderError::Png {
            path: p,
            reason: e.to_string(),
        })
    }
}

/// Write `frames` as an animated GIF at `fps` frames per second (looping).
pub fn save_gif(frames: &[RgbImage], fps: f64, path: impl AsRef<Path>) -> Result<(), RenderError> {
    let path = path.as_ref();
    let p = path.display().to_string();
    let first = frames.first().ok_or_else(|| RenderError::Frames {
        path: p.clone(),
        reason: "no frames".into(),
    })?;
    if frames
        .iter()
        .any(|f| f.width != first.width || f.height != first.height)
    {
        return Err(RenderError::Frames {
            path: p,
            reason: "frames differ in size".into(),
        });
    }
    if first.width > u16::MAX as u32 || first.height > u16::MAX as u32 {
        return Err(RenderError::Frames {
            path: p,
            reason: "frame larger than 65535 pixels".into(),
        });
    }
    let file = File::create(path).map_err(|source| RenderError::Io {
        path: p.clone(),
        source,
    })?;
    let gif_err = |e: gif::EncodingError| RenderError::Gif {
        path: p.clone(),
        reason: e.to_string(),
    };
    let mut enc = gif::Encoder::new(
        BufWriter::new(file),
        first.width as u16,
        first.height as u16,
        &[],
    )
    .map_err(gif_err)?;
    enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
    let delay = (100.0 / fps.max(0.01)).round().clamp(1.0, 65535.0) as u16;
    for f in frames {
        // speed 10: fast NeuQuant quantization, fine for flat-coloured frames.
        let mut frame = gif::Frame::from_rgb_speed(f.width as u16, f.height as u16, &f.data, 10);
        frame.delay = delay;
        enc.write_frame(&frame).map_err(gif_err)?;
    }
    Ok(())
}

/// Roll out up to `max_steps` steps of `policy` from `reset(seed)` and collect
/// one frame per state (including the first). Stops at termination/truncation.
pub fn render_episode<E: Env + ?Sized>(
    env: &mut E,
    seed: Option<u64>,
    max_steps: usize,
    mut policy: impl FnMut(&[f64]) -> Action,
) -> Result<Vec<RgbImage>, RenderError> {
    let (mut obs, _) = env.reset(seed)?;
    let mut frames = vec![env.render()?];
    for _ in 0..max_steps {
        let a = policy(&obs);
        let s = env.step(&a)?;
        frames.push(env.render()?);
        obs = s.obs;
        if s.terminated || s.truncated {
            break;
        }
    }
    Ok(frames)
}

/// Behaviour used by [`record_episodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderPolicy {
    /// Uniform samples from the action space.
    Random,
    /// The environment's scripted expert (PointMaze2D's bimodal expert).
    Expert,
}

impl std::str::FromStr for RenderPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(RenderPolicy::Random),
            "expert" => Ok(RenderPolicy::Expert),
            other => Err(format!(
                "unknown policy `{other}`; known: random, expert (PointMaze2D)"
            )),
        }
    }
}

/// Frames of `episodes` episodes of `make_with(id, params)` under `policy`
/// (episode `k` uses seed `seed + k`), one frame per state; the code path of
/// `kiln env render`.
pub fn record_episodes(
    id: &str,
    params: &serde_json::Value,
    policy: RenderPolicy,
    episodes: usize,
    seed: u64,
) -> Result<Vec<RgbImage>, RenderError> {
    let mut env = crate::registry::make_with(id, params, true)?;
    let max_steps = crate::registry::spec(id)?.max_episode_steps.unwrap_or(1000);
    let space = env.action_space().clone();
    let mut rng = crate::env::seeded_rng(seed);
    let mut frames = vec![];
    for k in 0..episodes {
        let ep_seed = Some(seed + k as u64);
        let mut f = match policy {
            RenderPolicy::Random => {
                render_episode(&mut env, ep_seed, max_steps, |_| space.sample(&mut rng))?
            }
            RenderPolicy::Expert => {
                if !id.starts_with("PointMaze2D") {
                    return Err(RenderError::Env(EnvError::Unsupported {
                        env: id.to_string(),
                        what: "the expert policy (only PointMaze2D has one)",
                    }));
                }
                let layout =
                    crate::point_maze::PointMaze2D::from_json(params, id.contains("Dense"))?
                        .layout()
                        .clone();
                let step_len = layout.max_speed * layout.dt;
                let mut expert = crate::point_maze::PointMazeExpert::new(
                    &layout,
                    crate::point_maze::Detour::Left,
                );
                let mut erng = crate::env::seeded_rng(seed + k as u64);
                expert.reset(&layout, &mut erng);
                render_episode(&mut env, ep_seed, max_steps, |obs| {
                    Action::Continuous(expert.act(obs, step_len, &mut erng).to_vec())
                })?
            }
        };
        frames.append(&mut f);
    }
    Ok(frames)
}

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];

/// Gymnasium's CartPole frame: 600×400, scale `600 / 4.8` px per metre,
/// cart 50×30 px, pole 10 px wide and `2 * length * scale` long, track at y = 100 (from the bottom).
pub fn draw_cartpole(state: &[f64; 4], length: f64) -> RgbImage {
    let (w, h) = (600.0, 400.0);
    let mut img = RgbImage::new(600, 400, WHITE);
    let scale = w / (crate::classic::cartpole::X_THRESHOLD * 2.0);
    let polelen = scale * (2.0 * length);
    let (cartwidth, cartheight) = (50.0, 30.0);
    let carty = 100.0;
    let flip = |y: f64| h - y;
    img.fill_rect(0.0, flip(carty) - 0.5, w, flip(carty) + 0.5, BLACK);
    let cartx = state[0] * scale + w / 2.0;
    img.fill_rect(
        cartx - cartwidth / 2.0,
        flip(carty + cartheight / 2.0),
        cartx + cartwidth / 2.0,
        flip(carty - cartheight / 2.0),
        BLACK,
    );
    let axle = (cartx, flip(carty + cartheight / 4.0));
    let theta = state[2];
    let tip = (
        axle.0 + polelen * theta.sin(),
        axle.1 - polelen * theta.cos(),
    );
    img.draw_segment(axle, tip, 10.0, [202, 152, 101]);
    img.fill_circle(axle.0, axle.1, 5.0, [129, 132, 203]);
    img
}

/// Gymnasium's Pendulum frame: 500×500, rod of length 1 (scale 500 / 4.4),
/// red rod, black axle; the last torque as a bar (left/right of centre).
pub fn draw_pendulum(theta: f64, last_u: Option<f64>, max_torque: f64) -> RgbImage {
    let dim = 500.0;
    let mut img = RgbImage::new(500, 500, WHITE);
    let scale = dim / 4.4;
    let c = (dim / 2.0, dim / 2.0);
    let rod = 1.0 * scale;
    // Gymnasium draws the rod at angle theta + pi/2 with y up: the tip is (sin θ, cos θ) up.
    let tip = (c.0 + rod * theta.sin(), c.1 - rod * theta.cos());
    img.draw_segment(c, tip, 0.2 * scale, [204, 77, 77]);
    img.fill_circle(c.0, c.1, 0.05 * scale, BLACK);
    if let Some(u) = last_u {
        let frac = (u / max_torque).clamp(-1.0, 1.0);
        img.fill_rect(
            c.0,
            dim - 30.0,
            c.0 + frac * 200.0,
            dim - 20.0,
            [80, 80, 200],
        );
    }
    img
}
