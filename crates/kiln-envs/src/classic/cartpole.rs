//! `CartPole-v1`: Barto, Sutton & Anderson (1983) cart-pole, exactly as
//! Gymnasium 1.x `gymnasium/envs/classic_control/cartpole.py` (Euler
//! integration of Florian (2007)'s corrected equations, same constants,
//! same operation order, reward 1 per step including the terminating one).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::env::{
    Action, Env, EnvRng, Info, Phase, Transition, check_obs_len, check_state_len, env_rng,
    parse_params,
};
use crate::error::EnvError;
use crate::render::RgbImage;
use crate::space::{BoxSpace, Space, discrete_index};

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
        for (name, v) in [
            ("gravity", self.gravity),
            ("masscart", self.masscart),
            ("masspole", self.masspole),
            ("length", self.length),
            ("force_mag", self.force_mag),
            ("tau", self.tau),
        ] {
            if !v.is_finite() {
                return Err(EnvError::param(ID, name, v, "must be finite"));
            }
        }
        for (name, v) in [
            ("masscart", self.masscart),
            ("length", self.length),
            ("tau", self.tau),
        ] {
            if v <= 0.0 {
                return Err(EnvError::param(ID, name, v, "must be positive"));
            }
        }
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

/// The cart-pole environment. State `[x, x_dot, theta, theta_dot]` (float64, as Gymnasium).
#[derive(Debug, Clone)]
pub struct CartPole {
    params: CartPoleParams,
    state: [f64; 4],
    rng: EnvRng,
    phase: Phase,
    obs_space: Space,
    act_space: Space,
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new(CartPoleParams::default()).expect("default parameters are valid")
    }
}

impl CartPole {
    /// Build with the given parameters.
    pub fn new(params: CartPoleParams) -> Result<Self, EnvError> {
        params.validate()?;
        let high = [
            X_THRESHOLD * 2.0,
            f64::INFINITY,
            THETA_THRESHOLD_RADIANS * 2.0,
            f64::INFINITY,
        ];
        // Gymnasium declares the bounds as float32.
        let high: Vec<f64> = high.iter().map(|&h| h as f32 as f64).collect();
        let low = high.iter().map(|h| -h).collect();
        Ok(Self {
            params,
            state: [0.0; 4],
            rng: env_rng(None),
            phase: Phase::NotStarted,
            obs_space: Space::Box(BoxSpace::new(low, high)?),
            act_space: Space::discrete(2),
        })
    }

    /// Build from JSON parameters over the defaults.
    pub fn from_json(params: &serde_json::Value) -> Result<Self, EnvError> {
        Self::new(parse_params(ID, params)?)
    }

    /// The physical parameters.
    pub fn physics(&self) -> &CartPoleParams {
        &self.params
    }

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

    /// Allocation-free step for a known action index; the hot path of vectorized stepping.
    #[inline]
    pub fn step_index(&mut self, action: usize, obs: &mut [f64]) -> Result<(f64, bool), EnvError> {
        self.phase.ensure_running(ID)?;
        if action > 1 {
            return Err(EnvError::DiscreteOutOfRange {
                env: ID.to_string(),
                index: 0,
                value: action as i64,
                start: 0,
                end: 2,
            });
        }
        self.state = Self::dynamics(&self.params, self.state, action);
        let terminated = Self::is_terminal(&self.state);
        // Gymnasium: +1 on every step including the terminating one (Sutton–Barto: 0, then −1).
        let reward = match (self.params.sutton_barto_reward, terminated) {
            (false, _) => 1.0,
            (true, false) => 0.0,
            (true, true) => -1.0,
        };
        if terminated {
            self.phase = Phase::Ended;
        }
        obs[..4].copy_from_slice(&self.state);
        Ok((reward, terminated))
    }
}

impl Env for CartPole {
    fn id(&self) -> &str {
        ID
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    /// Gymnasium: `state ~ U(-0.05, 0.05)^4`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        check_obs_len(ID, 4, obs)?;
        if seed.is_some() {
            self.rng = env_rng(seed);
        }
        for v in &mut self.state {
            *v = self.rng.random_range(-0.05..0.05);
        }
        self.phase = Phase::Running;
        obs.copy_from_slice(&self.state);
        Ok(Info::new())
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        check_obs_len(ID, 4, obs)?;
        let a = discrete_index(ID, action, 2)?;
        let (reward, terminated) = self.step_index(a, obs)?;
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
        let p: CartPoleParams = parse_params(ID, params)?;
        p.validate()?;
        self.params = p;
        Ok(())
    }

    fn state(&self) -> Option<Vec<f64>> {
        Some(self.state.to_vec())
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        check_state_len(ID, STATE_NAMES, 4, state)?;
        self.state.copy_from_slice(state);
        self.phase = Phase::Running;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        check_obs_len(ID, 4, obs)?;
        obs.copy_from_slice(&self.state);
        Ok(())
    }

    /// 600×400 frame in Gymnasium's layout: track, cart, pole, axle.
    fn render(&self) -> Result<RgbImage, EnvError> {
        Ok(crate::render::draw_cartpole(
            &self.state,
            self.params.length,
        ))
    }
}
