//! `PointMaze2D`: continuous 2-D navigation around an obstacle to a goal, the
//! testbed for generative policies.
//!
//! A point in the arena `[-1, 1]²` moves with velocity control:
//! `p ← p + max_speed · dt · clip(a, -1, 1)`, resolved axis by axis so it
//! slides along walls instead of passing through them. The default layout
//! puts a block `[-0.3, 0.3] × [-0.2, 0.2]` between the start `(0, -0.8)` and
//! the goal disc centred at `(0, 0.8)` (radius 0.1); the episode terminates
//! on reaching the goal. Reward: sparse (1 on reaching the goal, else 0) or
//! dense (`−‖p − g‖` per step, plus 1 on reaching the goal).
//!
//! [`PointMazeExpert`] is a scripted expert with **two modes**: at each reset
//! it picks, with probability 1/2, to pass the block on the left or on the
//! right. A unimodal Gaussian behaviour-cloning policy averages the two modes
//! at the start, heads straight up into the block and gets stuck; a
//! multimodal (generative) policy reproduces either detour and reaches the goal.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::env::{
    Action, Env, EnvRng, Info, Phase, Transition, check_obs_len, check_state_len, env_rng,
    parse_params,
};
use crate::error::EnvError;
use crate::render::RgbImage;
use crate::space::{BoxSpace, Space};

const STATE_NAMES: &str = "x, y";

/// Layout and dynamics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointMazeParams {
    /// Axis-aligned obstacles `[x_min, y_min, x_max, y_max]`.
    pub obstacles: Vec<[f64; 4]>,
    /// Start position.
    pub start: [f64; 2],
    /// Uniform noise half-width added to the start on reset.
    pub start_noise: f64,
    /// Goal centre.
    pub goal: [f64; 2],
    /// Goal radius.
    pub goal_radius: f64,
    /// Speed at `|a| = 1` (arena units per second).
    pub max_speed: f64,
    /// Time step (s).
    pub dt: f64,
    /// Dense reward `−‖p − g‖` instead of sparse.
    pub dense: bool,
}

impl Default for PointMazeParams {
    fn default() -> Self {
        Self {
            obstacles: vec![[-0.3, -0.2, 0.3, 0.2]],
            start: [0.0, -0.8],
            start_noise: 0.02,
            goal: [0.0, 0.8],
            goal_radius: 0.1,
            max_speed: 1.0,
            dt: 0.1,
            dense: false,
        }
    }
}

/// Arena half-width: positions lie in `[-ARENA, ARENA]²`.
pub const ARENA: f64 = 1.0;

impl PointMazeParams {
    fn validate(&self, env: &str) -> Result<(), EnvError> {
        for (name, v) in [
            ("start_noise", self.start_noise),
            ("goal_radius", self.goal_radius),
            ("max_speed", self.max_speed),
            ("dt", self.dt),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(EnvError::param(
                    env,
                    name,
                    v,
                    "must be a non-negative finite number",
                ));
            }
        }
        for (i, o) in self.obstacles.iter().enumerate() {
            if !(o[0] < o[2] && o[1] < o[3]) || o.iter().any(|v| !v.is_finite()) {
                return Err(EnvError::param(
                    env,
                    &format!("obstacles[{i}]"),
                    format!("{o:?}"),
                    "needs x_min < x_max and y_min < y_max",
                ));
            }
        }
        let free = |p: [f64; 2]| p.iter().all(|v| v.abs() <= ARENA) && !self.blocked(p);
        if !free(self.start) {
            return Err(EnvError::param(
                env,
                "start",
                format!("{:?}", self.start),
                "must be a free point of the arena",
            ));
        }
        if !self.goal.iter().all(|v| v.is_finite() && v.abs() <= ARENA) {
            return Err(EnvError::param(
                env,
                "goal",
                format!("{:?}", self.goal),
                "must lie in the arena",
            ));
        }
        Ok(())
    }

    /// Whether `p` lies inside an obstacle.
    pub fn blocked(&self, p: [f64; 2]) -> bool {
        self.obstacles
            .iter()
            .any(|o| p[0] > o[0] && p[0] < o[2] && p[1] > o[1] && p[1] < o[3])
    }
}

/// The environment. State and observation `[x, y]`.
#[derive(Debug, Clone)]
pub struct PointMaze2D {
    id: &'static str,
    params: PointMazeParams,
    pos: [f64; 2],
    rng: EnvRng,
    phase: Phase,
    obs_space: Space,
    act_space: Space,
}

impl PointMaze2D {
    /// Build; the id is `PointMaze2D-v0` (sparse) or `PointMaze2DDense-v0` (dense).
    pub fn new(params: PointMazeParams) -> Result<Self, EnvError> {
        let id = if params.dense {
            "PointMaze2DDense-v0"
        } else {
            "PointMaze2D-v0"
        };
        params.validate(id)?;
        Ok(Self {
            id,
            params,
            pos: [0.0; 2],
            rng: env_rng(None),
            phase: Phase::NotStarted,
            obs_space: Space::Box(BoxSpace::uniform(-ARENA, ARENA, 2)?),
            act_space: Space::Box(BoxSpace::uniform(-1.0, 1.0, 2)?),
        })
    }

    /// Build from JSON over the defaults, forcing the reward variant.
    pub fn from_json(params: &serde_json::Value, dense: bool) -> Result<Self, EnvError> {
        let id = if dense {
            "PointMaze2DDense-v0"
        } else {
            "PointMaze2D-v0"
        };
        let mut p: PointMazeParams = parse_params(id, params)?;
        p.dense = dense;
        Self::new(p)
    }

    /// The layout.
    pub fn layout(&self) -> &PointMazeParams {
        &self.params
    }

    /// Whether `p` is inside the goal disc.
    pub fn at_goal(&self, p: [f64; 2]) -> bool {
        let (dx, dy) = (p[0] - self.params.goal[0], p[1] - self.params.goal[1]);
        dx * dx + dy * dy <= self.params.goal_radius * self.params.goal_radius
    }

    fn try_move(&self, from: [f64; 2], to: [f64; 2]) -> [f64; 2] {
        let ok =
            |p: [f64; 2]| p[0].abs() <= ARENA && p[1].abs() <= ARENA && !self.params.blocked(p);
        // axis by axis: slide along walls
        let mut p = from;
        let px = [to[0].clamp(-ARENA, ARENA), p[1]];
        if ok(px) {
            p = px;
        }
        let py = [p[0], to[1].clamp(-ARENA, ARENA)];
        if ok(py) {
            p = py;
        }
        p
    }
}

impl Env for PointMaze2D {
    fn id(&self) -> &str {
        self.id
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        check_obs_len(self.id, 2, obs)?;
        if seed.is_some() {
            self.rng = env_rng(seed);
        }
        let w = self.params.start_noise;
        for i in 0..2 {
            let e = if w > 0.0 {
                self.rng.random_range(-w..w)
            } else {
                0.0
            };
            self.pos[i] = self.params.start[i] + e;
        }
        if self.params.blocked(self.pos) {
            self.pos = self.params.start;
        }
        self.phase = Phase::Running;
        obs.copy_from_slice(&self.pos);
        Ok(Info::new())
    }

    /// Actions outside `[-1, 1]²` are errors (wrap with `ClipAction` to clip).
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        check_obs_len(self.id, 2, obs)?;
        self.act_space.check(self.id, action)?;
        self.phase.ensure_running(self.id)?;
        let a = match action {
            Action::Continuous(a) => a,
            _ => unreachable!("checked by the action space"),
        };
        let h = self.params.max_speed * self.params.dt;
        let to = [self.pos[0] + h * a[0], self.pos[1] + h * a[1]];
        self.pos = self.try_move(self.pos, to);
        let terminated = self.at_goal(self.pos);
        let mut reward = if terminated { 1.0 } else { 0.0 };
        if self.params.dense {
            let (dx, dy) = (
                self.pos[0] - self.params.goal[0],
                self.pos[1] - self.params.goal[1],
            );
            reward -= (dx * dx + dy * dy).sqrt();
        }
        if terminated {
            self.phase = Phase::Ended;
        }
        obs.copy_from_slice(&self.pos);
        Ok(Transition {
            reward,
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.params).unwrap_or(serde_json::Value::Null)
    }

    fn set_params(&mut self, params: &serde_json::Value) -> Result<(), EnvError> {
        let p = Self::from_json(params, self.params.dense)?;
        self.params = p.params;
        Ok(())
    }

    fn state(&self) -> Option<Vec<f64>> {
        Some(self.pos.to_vec())
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        check_state_len(self.id, STATE_NAMES, 2, state)?;
        let p = [state[0], state[1]];
        for (i, v) in p.iter().enumerate() {
            if v.abs() > ARENA {
                return Err(EnvError::InvalidState {
                    env: self.id.to_string(),
                    index: i,
                    name: ["x", "y"][i],
                    value: *v,
                    reason: "outside the arena [-1, 1]",
                });
            }
        }
        if self.params.blocked(p) {
            return Err(EnvError::InvalidState {
                env: self.id.to_string(),
                index: 0,
                name: "x",
                value: p[0],
                reason: "inside an obstacle",
            });
        }
        self.pos = p;
        self.phase = Phase::Running;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        check_obs_len(self.id, 2, obs)?;
        obs.copy_from_slice(&self.pos);
        Ok(())
    }

    /// 400×400 frame: obstacles grey, goal green, agent blue.
    fn render(&self) -> Result<RgbImage, EnvError> {
        let n = 400.0;
        let to_px = |p: [f64; 2]| {
            (
                (p[0] + ARENA) / (2.0 * ARENA) * n,
                (ARENA - p[1]) / (2.0 * ARENA) * n,
            )
        };
        let mut img = RgbImage::new(400, 400, [245, 245, 240]);
        for o in &self.params.obstacles {
            let (x0, y0) = to_px([o[0], o[3]]);
            let (x1, y1) = to_px([o[2], o[1]]);
            img.fill_rect(x0, y0, x1, y1, [110, 110, 110]);
        }
        let (gx, gy) = to_px(self.params.goal);
        img.fill_circle(
            gx,
            gy,
            self.params.goal_radius / (2.0 * ARENA) * n,
            [60, 180, 75],
        );
        let (ax, ay) = to_px(self.pos);
        img.fill_circle(ax, ay, 8.0, [40, 80, 220]);
        Ok(img)
    }
}

/// Which side of the block the expert passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detour {
    /// Pass on the left (negative x).
    Left,
    /// Pass on the right (positive x).
    Right,
}

/// Scripted bimodal expert for the default layout: waypoints beside the
/// block's lower and upper corners on the chosen side, then the goal; action =
/// direction to the current waypoint at full speed (slower when closer than one step).
#[derive(Debug, Clone)]
pub struct PointMazeExpert {
    /// Current mode.
    pub detour: Detour,
    waypoint: usize,
    waypoints: Vec<[f64; 2]>,
    /// Std of Gaussian noise added to actions (then clipped), for noisy-expert datasets.
    pub noise: f64,
}

impl PointMazeExpert {
    /// An expert for `layout` (uses the first obstacle; without obstacles it goes straight).
    pub fn new(layout: &PointMazeParams, detour: Detour) -> Self {
        let mut e = Self {
            detour,
            waypoint: 0,
            waypoints: vec![],
            noise: 0.0,
        };
        e.plan(layout);
        e
    }

    fn plan(&mut self, layout: &PointMazeParams) {
        self.waypoint = 0;
        self.waypoints = match layout.obstacles.first() {
            Some(o) => {
                let margin = 0.15;
                let x = match self.detour {
                    Detour::Left => o[0] - margin,
                    Detour::Right => o[2] + margin,
                };
                vec![[x, o[1] - margin], [x, o[3] + margin], layout.goal]
            }
            None => vec![layout.goal],
        };
    }

    /// Start a new episode: pick the mode uniformly at random.
    pub fn reset<R: Rng + ?Sized>(&mut self, layout: &PointMazeParams, rng: &mut R) {
        self.detour = if rng.random_bool(0.5) {
            Detour::Left
        } else {
            Detour::Right
        };
        self.plan(layout);
    }

    /// Action for position `obs = [x, y]` (advances waypoints when within 0.05).
    pub fn act<R: Rng + ?Sized>(&mut self, obs: &[f64], step_len: f64, rng: &mut R) -> [f64; 2] {
        let p = [obs[0], obs[1]];
        while self.waypoint + 1 < self.waypoints.len() {
            let w = self.waypoints[self.waypoint];
            if ((w[0] - p[0]).powi(2) + (w[1] - p[1]).powi(2)).sqrt() < 0.05 {
                self.waypoint += 1;
            } else {
                break;
            }
        }
        let w = self.waypoints[self.waypoint];
        let (dx, dy) = (w[0] - p[0], w[1] - p[1]);
        let d = (dx * dx + dy * dy).sqrt();
        let scale = if d > step_len {
            1.0 / d
        } else {
            1.0 / step_len.max(1e-12)
        };
        let mut a = [dx * scale, dy * scale];
        if self.noise > 0.0 {
            for v in &mut a {
                let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
                *v += self.noise * z;
            }
        }
        [a[0].clamp(-1.0, 1.0), a[1].clamp(-1.0, 1.0)]
    }
}
