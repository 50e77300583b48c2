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

use super::{Classic, Model};
use crate::env::{Action, EnvRng};
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
