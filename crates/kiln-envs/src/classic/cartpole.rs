//! `CartPole-v1`: Barto, Sutton & Anderson (1983) cart-pole, exactly as
//! Gymnasium 1.x `gymnasium/envs/classic_control/cartpole.py` (Euler
//! integration of Florian (2007)'s corrected equations, same constants,
//! same operation order, reward 1 per step including the terminating one).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{Classic, Model};
use crate::env::{Action, EnvRng};
use crate::error::EnvError;
use crate::render::RgbImage;
use crate::space::{Space, discrete_index};

const ID: &str = "CartPole-v1";
const STATE_NAMES: &str = "x, x_dot, theta, theta_dot";

/// Physical constants (Gymnasium's defaults). `length` is half the pole length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartPoleParams {
    /// Gravity (m/s²).
    pub gravity: f64,
    /// Cart mass (kg).
    pub masscart: f64,
    /// Pole mass (kg).
    pub masspole: f64,
    /// Half the pole length (m).
    pub length: f64,
    /// Magnitude of the push (N).
    pub force_mag: f64,
    /// Seconds between state updates.
    pub tau: f64,
    /// `true`: semi-implicit Euler; `false` (Gymnasium default): explicit Euler.
    pub semi_implicit: bool,
    /// Sutton & Barto reward (0 per step, −1 on failure) instead of +1 per step.
    pub sutton_barto_reward: bool,
}

impl Default for CartPoleParams {
    fn default() -> Self {
        Self {
            gravity: 9.8,
            masscart: 1.0,
            masspole: 0.1,
            length: 0.5,
            force_mag: 10.0,
            tau: 0.02,
            semi_implicit: false,
            sutton_barto_reward: false,
        }
    }
}

impl CartPoleParams {
    fn validate(&self) -> Result<(), EnvError> {
        super::check_finite_positive(
            ID,
            &[
                ("gravity", self.gravity),
                ("masscart", self.masscart),
                ("masspole", self.masspole),
                ("length", self.length),
                ("force_mag", self.force_mag),
                ("tau", self.tau),
            ],
            &["masscart", "length", "tau"],
        )?;
        if self.masspole < 0.0 {
            return Err(EnvError::param(
                ID,
                "masspole",
                self.masspole,
                "must be non-negative",
            ));
        }
        Ok(())
    }
}

/// Failure thresholds (Gymnasium: `12 * 2 * math.pi / 360` rad and 2.4 m).
pub const THETA_THRESHOLD_RADIANS: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// Cart position threshold (m).
pub const X_THRESHOLD: f64 = 2.4;

/// The cart-pole state `[x, x_dot, theta, theta_dot]` (float64, as Gymnasium).
#[derive(Debug, Clone, Default)]
pub struct CartPoleModel {
    state: [f64; 4],
}

/// The cart-pole environment.
pub type CartPole = Classic<CartPoleModel>;

impl Model for CartPoleModel {
    const ID: &'static str = ID;
    const STATE_NAMES: &'static str = STATE_NAMES;
    const STATE_LEN: usize = 4;
    const OBS_LEN: usize = 4;
    type Params = CartPoleParams;

    fn validate(params: &CartPoleParams) -> Result<(), EnvError> {
        params.validate()
    }

    fn spaces(_: &CartPoleParams) -> Result<(Space, Space), EnvError> {
        let high = [
            X_THRESHOLD * 2.0,
            f64::INFINITY,
            THETA_THRESHOLD_RADIANS * 2.0,
            f64::INFINITY,
        ];
        Ok((super::symmetric_f32_box(&high)?, Space::discrete(2)))
    }

    /// Gymnasium: `state ~ U(-0.05, 0.05)^4`.
    fn draw_start(&mut self, _: &CartPoleParams, rng: &mut EnvRng) {
        for v in &mut self.state {
            *v = rng.random_range(-0.05..0.05);
        }
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    fn load_state(&mut self, state: &[f64]) {
        self.state.copy_from_slice(state);
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f64]) {
        obs[..4].copy_from_slice(&self.state);
    }

    #[inline]
    fn step(
        &mut self,
        params: &CartPoleParams,
        action: &Action,
        obs: &mut [f64],
    ) -> Result<(f64, bool), EnvError> {
        let a = discrete_index(ID, action, 2)?;
        Ok(self.step_index(params, a, obs))
    }

    /// 600×400 frame in Gymnasium's layout: track, cart, pole, axle.
    fn render(&self, params: &CartPoleParams) -> Option<RgbImage> {
        Some(crate::render::draw_cartpole(&self.state, params.length))
    }
}

impl CartPoleModel {
    /// One step with a valid action index (0 or 1).
    #[inline]
    fn step_index(&mut self, p: &CartPoleParams, action: usize, obs: &mut [f64]) -> (f64, bool) {
        self.state = CartPole::dynamics(p, self.state, action);
        let terminated = CartPole::is_terminal(&self.state);
        // Gymnasium: +1 on every step including the terminating one (Sutton–Barto: 0, then −1).
        let reward = match (p.sutton_barto_reward, terminated) {
            (false, _) => 1.0,
            (true, false) => 0.0,
            (true, true) => -1.0,
        };
        self.write_obs(obs);
        (reward, terminated)
    }
}

impl CartPole {
    /// One Euler step of the dynamics from `s` with push direction `action`
    /// (1 = right). Operation order follows Gymnasium's `step` exactly.
    #[inline]
    pub fn dynamics(p: &CartPoleParams, s: [f64; 4], action: usize) -> [f64; 4] {
        let [x, x_dot, theta, theta_dot] = s;
        let total_mass = p.masspole + p.masscart;
        let polemass_length = p.masspole * p.length;
        let force = if action == 1 {
            p.force_mag
        } else {
            -p.force_mag
        };
        let (sintheta, costheta) = theta.sin_cos();
        let temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
        let thetaacc = (p.gravity * sintheta - costheta * temp)
            / (p.length * (4.0 / 3.0 - p.masspole * (costheta * costheta) / total_mass));
        let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
        if p.semi_implicit {
            let x_dot = x_dot + p.tau * xacc;
            let x = x + p.tau * x_dot;
            let theta_dot = theta_dot + p.tau * thetaacc;
            let theta = theta + p.tau * theta_dot;
            [x, x_dot, theta, theta_dot]
        } else {
            [
                x + p.tau * x_dot,
                x_dot + p.tau * xacc,
                theta + p.tau * theta_dot,
                theta_dot + p.tau * thetaacc,
            ]
        }
    }

    /// Gymnasium's termination test (written as Gymnasium writes it: a NaN state does not terminate).
    #[inline]
    #[allow(clippy::manual_range_contains)]
    pub fn is_terminal(s: &[f64; 4]) -> bool {
        let [x, _, theta, _] = *s;
        x < -X_THRESHOLD
            || x > X_THRESHOLD
            || theta < -THETA_THRESHOLD_RADIANS
            || theta > THETA_THRESHOLD_RADIANS
    }

    /// Allocation-free step for a known action index.
    #[inline]
    pub fn step_index(&mut self, action: usize, obs: &mut [f64]) -> Result<(f64, bool), EnvError> {
        crate::env::check_obs_len(ID, 4, obs)?;
        if action > 1 {
            return Err(EnvError::DiscreteOutOfRange {
                env: ID.to_string(),
                index: 0,
                value: action as i64,
                start: 0,
                end: 2,
            });
        }
        self.advance(obs, |m, p, o| Ok(m.step_index(p, action, o)))
    }
}
