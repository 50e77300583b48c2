//! `Pendulum-v1`: the inverted-pendulum swing-up of Gymnasium 1.x
//! `gymnasium/envs/classic_control/pendulum.py`.
//!
//! Float32 details reproduced on purpose: the action space is float32, so
//! Gymnasium's `u = np.clip(u, -2, 2)[0]` is a `np.float32`; under NumPy 2
//! promotion (NEP 50) `3.0 / (m * l**2) * u` and `0.001 * u**2` are then computed
//! in float32 while the rest of the update is float64. A plain float64 port
//! drifts past 1e-5 over long replays.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::lanes::{self, LANES, VectorFeatures};
use super::{Classic, LaneModel, Model};
use crate::env::{Action, BatchOut, EnvRng};
use crate::error::EnvError;
use crate::render::RgbImage;
use crate::space::{BoxSpace, Space, finite_continuous};

const ID: &str = "Pendulum-v1";
const STATE_NAMES: &str = "theta, theta_dot";

/// Physical constants (Gymnasium's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PendulumParams {
    /// Gravity (Gymnasium's `g` argument, default 10).
    pub g: f64,
    /// Mass.
    pub m: f64,
    /// Length.
    pub l: f64,
    /// Time step.
    pub dt: f64,
    /// Angular speed limit.
    pub max_speed: f64,
    /// Torque limit (the action space is `[-max_torque, max_torque]`).
    pub max_torque: f64,
}

impl Default for PendulumParams {
    fn default() -> Self {
        Self {
            g: 10.0,
            m: 1.0,
            l: 1.0,
            dt: 0.05,
            max_speed: 8.0,
            max_torque: 2.0,
        }
    }
}

impl PendulumParams {
    fn validate(&self) -> Result<(), EnvError> {
        super::check_finite_positive(
            ID,
            &[
                ("g", self.g),
                ("m", self.m),
                ("l", self.l),
                ("dt", self.dt),
                ("max_speed", self.max_speed),
                ("max_torque", self.max_torque),
            ],
            &["m", "l", "dt", "max_speed", "max_torque"],
        )
    }
}

/// Gymnasium's `angle_normalize`: `((x + pi) % (2 pi)) - pi` with NumPy's
/// floored modulo (`fmod`, then `+ 2 pi` for a negative remainder). `fmod` is
/// exact, so on `[-2 pi, 4 pi)` the remainder is computed without calling it:
/// one exact subtraction (Sterbenz) or the same rounded addition NumPy does.
#[inline]
pub fn angle_normalize(x: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let two_pi = 2.0 * pi;
    let a = x + pi;
    let r = if (0.0..two_pi).contains(&a) {
        a
    } else if (two_pi..2.0 * two_pi).contains(&a) {
        a - two_pi
    } else if a < 0.0 && a > -two_pi {
        a + two_pi
    } else {
        a.rem_euclid(two_pi)
    };
    r - pi
}

/// [`angle_normalize`] for `x + pi` in `(-2 pi, 4 pi)` (its first three
/// cases, the same operations) without a branch, so lanes vectorize:
/// `(result, covered)`; the lanes not covered call [`angle_normalize`].
#[inline(always)]
fn angle_normalize_fast(x: f64) -> (f64, bool) {
    let pi = std::f64::consts::PI;
    let two_pi = 2.0 * pi;
    let a = x + pi;
    let r = if (a >= 0.0) & (a < two_pi) {
        a
    } else if (a >= two_pi) & (a < 2.0 * two_pi) {
        a - two_pi
    } else {
        a + two_pi
    };
    (r - pi, (a > -two_pi) & (a < 2.0 * two_pi))
}

/// The pendulum's state `[theta, theta_dot]` (float64) with `sin(theta)`
/// (computed for the observation, reused by the next step) and the last torque.
#[derive(Debug, Clone, Default)]
pub struct PendulumModel {
    state: [f64; 2],
    sin_th: f64,
    last_u: Option<f32>,
}

/// The pendulum. Observation `[cos θ, sin θ, θ̇]`.
pub type Pendulum = Classic<PendulumModel>;

impl Model for PendulumModel {
    const ID: &'static str = ID;
    const STATE_NAMES: &'static str = STATE_NAMES;
    const STATE_LEN: usize = 2;
    const OBS_LEN: usize = 3;
    type Params = PendulumParams;

    fn validate(params: &PendulumParams) -> Result<(), EnvError> {
        params.validate()
    }

    fn spaces(p: &PendulumParams) -> Result<(Space, Space), EnvError> {
        let mt = p.max_torque as f32 as f64;
        Ok((
            super::symmetric_f32_box(&[1.0, 1.0, p.max_speed])?,
            Space::Box(BoxSpace::new(vec![-mt], vec![mt])?),
        ))
    }

    /// Gymnasium: `theta ~ U(-pi, pi)`, `theta_dot ~ U(-1, 1)`.
    fn draw_start(&mut self, _: &PendulumParams, rng: &mut EnvRng) {
        let pi = std::f64::consts::PI;
        let start = [rng.random_range(-pi..pi), rng.random_range(-1.0..1.0)];
        self.load_state(&start);
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    fn load_state(&mut self, state: &[f64]) {
        self.state.copy_from_slice(state);
        self.sin_th = self.state[0].sin();
        self.last_u = None;
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f64]) {
        let [th, thdot] = self.state;
        obs[0] = th.cos();
        obs[1] = self.sin_th;
        obs[2] = thdot;
    }

    /// Out-of-range torques are clipped to `[-max_torque, max_torque]`, as Gymnasium does;
    /// NaN/infinite or wrong-length actions are errors. Pendulum never terminates;
    /// `Pendulum-v1` is truncated at 200 steps by `TimeLimit`.
    #[inline]
    fn step(
        &mut self,
        params: &PendulumParams,
        action: &Action,
        obs: &mut [f64],
    ) -> Result<(f64, bool), EnvError> {
        let a = finite_continuous(ID, action, 1)?;
        Ok((self.step_torque(params, a[0], obs), false))
    }

    fn step_batch<T>(
        items: &mut [T],
        inner: &impl Fn(&mut T) -> &mut Classic<Self>,
        actions: &[Action],
        out: BatchOut<'_>,
    ) -> Option<Result<(), (usize, EnvError)>> {
        super::step_lane_blocks(items, inner, actions, out)
    }

    fn render(&self, params: &PendulumParams) -> Option<RgbImage> {
        Some(crate::render::draw_pendulum(
            self.state[0],
            self.last_u.map(f64::from),
            params.max_torque,
        ))
    }
}

impl PendulumModel {
    /// One step with a finite torque; the reward.
    #[inline]
    fn step_torque(&mut self, p: &PendulumParams, torque: f64, obs: &mut [f64]) -> f64 {
        let (next, reward) = Pendulum::dynamics_with_sin(p, self.state, self.sin_th, torque as f32);
        self.state = next;
        self.sin_th = next[0].sin();
        self.last_u = Some((torque as f32).clamp(-(p.max_torque as f32), p.max_torque as f32));
        self.write_obs(obs);
        reward
    }
}

/// A block of pendulums: state, raw action and the step's results per lane.
#[derive(Debug, Default)]
pub struct PendulumBlock {
    th: [f64; LANES],
    thdot: [f64; LANES],
    sin_th: [f64; LANES],
    action: [f32; LANES],
    u: [f32; LANES],
    reward: [f64; LANES],
    cos_th: [f64; LANES],
}

/// The parameters' values the step uses, computed as [`Pendulum::dynamics`] does.
#[derive(Debug)]
struct PendulumConsts {
    max_torque: f32,
    torque_gain: f32,
    gravity_gain: f64,
    dt: f64,
    max_speed: f64,
}

lanes::lane_kernel! {
    fn pendulum_kernel(k: &PendulumConsts, b: &mut PendulumBlock) = pendulum_lanes;
}

/// [`Pendulum::dynamics_with_sin`] and the next `sin`/`cos` for every lane,
/// operation for operation.
#[inline(always)]
fn pendulum_lanes(k: &PendulumConsts, b: &mut PendulumBlock) {
    let mut an = [0.0; LANES];
    let mut an_ok = [false; LANES];
    let mut u_sq = [0.0_f32; LANES];
    let mut u_sq_ok = [false; LANES];
    for i in 0..LANES {
        let u = b.action[i].clamp(-k.max_torque, k.max_torque);
        b.u[i] = u;
        (an[i], an_ok[i]) = angle_normalize_fast(b.th[i]);
        (u_sq[i], u_sq_ok[i]) = super::py_square_f32_fast(u);
    }
    for i in 0..LANES {
        if !an_ok[i] {
            an[i] = angle_normalize(b.th[i]);
        }
        if !u_sq_ok[i] {
            u_sq[i] = super::py_square_f32(b.u[i]);
        }
    }
    let mut an_sq = [0.0; LANES];
    lanes::py_square_lanes(&an, &mut an_sq);
    let mut thdot_sq = [0.0; LANES];
    lanes::py_square_lanes(&b.thdot, &mut thdot_sq);
    for i in 0..LANES {
        let costs = an_sq[i] + 0.1 * thdot_sq[i] + f64::from(0.001_f32 * u_sq[i]);
        let torque_term: f32 = k.torque_gain * b.u[i];
        let newthdot = b.thdot[i] + (k.gravity_gain * b.sin_th[i] + f64::from(torque_term)) * k.dt;
        let newthdot = newthdot.clamp(-k.max_speed, k.max_speed);
        b.th[i] += newthdot * k.dt;
        b.thdot[i] = newthdot;
        b.reward[i] = -costs;
    }
    let th = b.th;
    lanes::sin_cos_lanes(&th, &mut b.sin_th, &mut b.cos_th);
}

impl LaneModel for PendulumModel {
    type Block = PendulumBlock;

    #[inline]
    fn load(&self, action: &Action, lane: usize, b: &mut PendulumBlock) -> bool {
        match action {
            Action::Continuous(a) if a.len() == 1 && a[0].is_finite() => {
                b.th[lane] = self.state[0];
                b.thdot[lane] = self.state[1];
                b.sin_th[lane] = self.sin_th;
                b.action[lane] = a[0] as f32;
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn run(features: VectorFeatures, p: &PendulumParams, b: &mut PendulumBlock) {
        let k = PendulumConsts {
            max_torque: p.max_torque as f32,
            torque_gain: (3.0 / (p.m * super::py_square(p.l))) as f32,
            gravity_gain: 3.0 * p.g / (2.0 * p.l),
            dt: p.dt,
            max_speed: p.max_speed,
        };
        pendulum_kernel(features, &k, b);
    }

    #[inline]
    fn store(&mut self, lane: usize, b: &PendulumBlock, obs: &mut [f64]) -> (f64, bool) {
        self.state = [b.th[lane], b.thdot[lane]];
        self.sin_th = b.sin_th[lane];
        self.last_u = Some(b.u[lane]);
        obs[..3].copy_from_slice(&[b.cos_th[lane], b.sin_th[lane], b.thdot[lane]]);
        (b.reward[lane], false)
    }
}

impl Pendulum {
    /// Last applied (clipped) torque, for rendering.
    pub fn last_torque(&self) -> Option<f64> {
        self.model().last_u.map(f64::from)
    }

    /// One step from `s` with the raw action `action` (float32 like Gymnasium's
    /// action space); returns the next state and the reward `-cost`.
    #[inline]
    pub fn dynamics(p: &PendulumParams, s: [f64; 2], action: f32) -> ([f64; 2], f64) {
        Self::dynamics_with_sin(p, s, s[0].sin(), action)
    }

    #[inline]
    fn dynamics_with_sin(
        p: &PendulumParams,
        s: [f64; 2],
        sin_th: f64,
        action: f32,
    ) -> ([f64; 2], f64) {
        let [th, thdot] = s;
        // np.clip(float32 array, python floats) stays float32.
        let u: f32 = action.clamp(-(p.max_torque as f32), p.max_torque as f32);
        let u_sq: f32 = super::py_square_f32(u);
        // `x ** 2` on NumPy scalars is C `pow` (see `py_square`).
        let costs = super::py_square(angle_normalize(th))
            + 0.1 * super::py_square(thdot)
            + f64::from(0.001_f32 * u_sq);
        let torque_term: f32 = (3.0 / (p.m * super::py_square(p.l))) as f32 * u;
        let newthdot = thdot + (3.0 * p.g / (2.0 * p.l) * sin_th + f64::from(torque_term)) * p.dt;
        let newthdot = newthdot.clamp(-p.max_speed, p.max_speed);
        let newth = th + newthdot * p.dt;
        ([newth, newthdot], -costs)
    }

    /// Allocation-free step with a scalar torque.
    #[inline]
    pub fn step_torque(&mut self, torque: f64, obs: &mut [f64]) -> Result<f64, EnvError> {
        crate::env::check_obs_len(ID, 3, obs)?;
        if !torque.is_finite() {
            return Err(EnvError::ActionNotFinite {
                env: ID.to_string(),
                index: 0,
                value: torque,
            });
        }
        let (reward, _) = self.advance(obs, |m, p, o| Ok((m.step_torque(p, torque, o), false)))?;
        Ok(reward)
    }
}
