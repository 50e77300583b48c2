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

use crate::env::{
    Action, Env, EnvRng, Info, Phase, Transition, check_obs_len, check_state_len, env_rng,
    parse_params,
};
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
        for (name, v) in [
            ("g", self.g),
            ("m", self.m),
            ("l", self.l),
            ("dt", self.dt),
            ("max_speed", self.max_speed),
            ("max_torque", self.max_torque),
        ] {
            if !v.is_finite() {
                return Err(EnvError::param(ID, name, v, "must be finite"));
            }
        }
        for (name, v) in [
            ("m", self.m),
            ("l", self.l),
            ("dt", self.dt),
            ("max_speed", self.max_speed),
            ("max_torque", self.max_torque),
        ] {
            if v <= 0.0 {
                return Err(EnvError::param(ID, name, v, "must be positive"));
            }
        }
        Ok(())
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

/// The pendulum. State `[theta, theta_dot]` (float64), observation `[cos θ, sin θ, θ̇]`.
#[derive(Debug, Clone)]
pub struct Pendulum {
    params: PendulumParams,
    state: [f64; 2],
    /// `sin(state[0])`, computed for the observation and reused by the next step.
    sin_th: f64,
    last_u: Option<f32>,
    rng: EnvRng,
    phase: Phase,
    obs_space: Space,
    act_space: Space,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new(PendulumParams::default()).expect("default parameters are valid")
    }
}

impl Pendulum {
    /// Build with the given parameters.
    pub fn new(params: PendulumParams) -> Result<Self, EnvError> {
        params.validate()?;
        let (obs_space, act_space) = Self::spaces(&params)?;
        Ok(Self {
            params,
            state: [0.0; 2],
            sin_th: 0.0,
            last_u: None,
            rng: env_rng(None),
            phase: Phase::NotStarted,
            obs_space,
            act_space,
        })
    }

    fn spaces(p: &PendulumParams) -> Result<(Space, Space), EnvError> {
        let ms = p.max_speed as f32 as f64;
        let mt = p.max_torque as f32 as f64;
        Ok((
            Space::Box(BoxSpace::new(vec![-1.0, -1.0, -ms], vec![1.0, 1.0, ms])?),
            Space::Box(BoxSpace::new(vec![-mt], vec![mt])?),
        ))
    }

    /// Build from JSON parameters over the defaults.
    pub fn from_json(params: &serde_json::Value) -> Result<Self, EnvError> {
        Self::new(parse_params(ID, params)?)
    }

    /// The physical parameters.
    pub fn physics(&self) -> &PendulumParams {
        &self.params
    }

    /// Last applied (clipped) torque, for rendering.
    pub fn last_torque(&self) -> Option<f64> {
        self.last_u.map(f64::from)
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

    fn write_obs(&self, obs: &mut [f64]) {
        let [th, thdot] = self.state;
        obs[0] = th.cos();
        obs[1] = self.sin_th;
        obs[2] = thdot;
    }

    /// Allocation-free step with a scalar torque.
    #[inline]
    pub fn step_torque(&mut self, torque: f64, obs: &mut [f64]) -> Result<f64, EnvError> {
        self.phase.ensure_running(ID)?;
        if !torque.is_finite() {
            return Err(EnvError::ActionNotFinite {
                env: ID.to_string(),
                index: 0,
                value: torque,
            });
        }
        let (next, reward) =
            Self::dynamics_with_sin(&self.params, self.state, self.sin_th, torque as f32);
        self.state = next;
        self.sin_th = next[0].sin();
        self.last_u = Some((torque as f32).clamp(
            -(self.params.max_torque as f32),
            self.params.max_torque as f32,
        ));
        self.write_obs(obs);
        Ok(reward)
    }
}

impl Env for Pendulum {
    fn id(&self) -> &str {
        ID
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    /// Gymnasium: `theta ~ U(-pi, pi)`, `theta_dot ~ U(-1, 1)`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        check_obs_len(ID, 3, obs)?;
        if seed.is_some() {
            self.rng = env_rng(seed);
        }
        let pi = std::f64::consts::PI;
        self.state = [
            self.rng.random_range(-pi..pi),
            self.rng.random_range(-1.0..1.0),
        ];
        self.sin_th = self.state[0].sin();
        self.last_u = None;
        self.phase = Phase::Running;
        self.write_obs(obs);
        Ok(Info::new())
    }

    /// Out-of-range torques are clipped to `[-max_torque, max_torque]`, as Gymnasium does;
    /// NaN/infinite or wrong-length actions are errors.
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        check_obs_len(ID, 3, obs)?;
        let a = finite_continuous(ID, action, 1)?;
        let reward = self.step_torque(a[0], obs)?;
        // Pendulum never terminates; `Pendulum-v1` is truncated at 200 steps by `TimeLimit`.
        Ok(Transition {
            reward,
            terminated: false,
            truncated: false,
            info: Info::new(),
        })
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.params).unwrap_or(serde_json::Value::Null)
    }

    fn set_params(&mut self, params: &serde_json::Value) -> Result<(), EnvError> {
        let p: PendulumParams = parse_params(ID, params)?;
        p.validate()?;
        let (o, a) = Self::spaces(&p)?;
        self.params = p;
        self.obs_space = o;
        self.act_space = a;
        Ok(())
    }

    fn state(&self) -> Option<Vec<f64>> {
        Some(self.state.to_vec())
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        check_state_len(ID, STATE_NAMES, 2, state)?;
        self.state.copy_from_slice(state);
        self.sin_th = self.state[0].sin();
        self.last_u = None;
        self.phase = Phase::Running;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        check_obs_len(ID, 3, obs)?;
        self.write_obs(obs);
        Ok(())
    }

    fn render(&self) -> Result<RgbImage, EnvError> {
        Ok(crate::render::draw_pendulum(
            self.state[0],
            self.last_torque(),
            self.params.max_torque,
        ))
    }
}
