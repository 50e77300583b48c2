//! `MountainCarContinuous-v0`: Moore (1990)'s mountain car with a continuous
//! force, exactly as Gymnasium 1.x `continuous_mountain_car.py`.
//!
//! Float32 details reproduced on purpose. Gymnasium stores the state as a
//! float32 array after every step (but as float64 right after `reset`), the
//! action is float32, and NumPy 2 promotion (NEP 50) decides the precision of
//! every operation: `np.float32 ⊕ python float` stays float32,
//! `np.float32 ⊕ np.float64` becomes float64, and comparisons of a float32 with
//! a Python float happen in float32. [`Np`] models those three scalar kinds, so
//! the update below is a line-by-line transcription of Gymnasium's `step`.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{Classic, Model};
use crate::env::{Action, EnvRng};
use crate::error::EnvError;
use crate::space::{BoxSpace, Space, finite_continuous};

const ID: &str = "MountainCarContinuous-v0";
const STATE_NAMES: &str = "position, velocity";

/// Constants (Gymnasium's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountainCarContinuousParams {
    /// Engine power multiplying the force.
    pub power: f64,
    /// Gravity-like coefficient of the `cos(3 x)` slope term.
    pub gravity: f64,
    /// Speed limit.
    pub max_speed: f64,
    /// Left wall.
    pub min_position: f64,
    /// Right boundary.
    pub max_position: f64,
    /// Goal position.
    pub goal_position: f64,
    /// Minimum velocity at the goal (Gymnasium's `goal_velocity` argument).
    pub goal_velocity: f64,
}

impl Default for MountainCarContinuousParams {
    fn default() -> Self {
        Self {
            power: 0.0015,
            gravity: 0.0025,
            max_speed: 0.07,
            min_position: -1.2,
            max_position: 0.6,
            goal_position: 0.45,
            goal_velocity: 0.0,
        }
    }
}

impl MountainCarContinuousParams {
    fn validate(&self) -> Result<(), EnvError> {
        for (name, v) in [
            ("power", self.power),
            ("gravity", self.gravity),
            ("max_speed", self.max_speed),
            ("min_position", self.min_position),
            ("max_position", self.max_position),
            ("goal_position", self.goal_position),
            ("goal_velocity", self.goal_velocity),
        ] {
            if !v.is_finite() {
                return Err(EnvError::param(ID, name, v, "must be finite"));
            }
        }
        if self.max_speed <= 0.0 {
            return Err(EnvError::param(
                ID,
                "max_speed",
                self.max_speed,
                "must be positive",
            ));
        }
        if self.min_position >= self.max_position {
            return Err(EnvError::param(
                ID,
                "min_position",
                self.min_position,
                "must be below max_position",
            ));
        }
        Ok(())
    }
}

/// A NumPy scalar as it flows through Gymnasium's `step`: its value and its
/// kind, which decides the precision of the next operation (NEP 50).
#[derive(Debug, Clone, Copy)]
struct Np {
    v: f64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `np.float32`
    F32,
    /// `np.float64`
    F64,
    /// a Python `float` (weakly typed)
    Py,
}

impl Np {
    fn f32(v: f32) -> Self {
        Np {
            v: f64::from(v),
            kind: Kind::F32,
        }
    }
    fn py(v: f64) -> Self {
        Np { v, kind: Kind::Py }
    }
    fn result_kind(a: Kind, b: Kind) -> Kind {
        match (a, b) {
            (Kind::F32, Kind::F32) | (Kind::F32, Kind::Py) | (Kind::Py, Kind::F32) => Kind::F32,
            (Kind::Py, Kind::Py) => Kind::Py,
            _ => Kind::F64,
        }
    }
    fn binary(self, other: Np, op: impl Fn(f64, f64) -> f64, op32: impl Fn(f32, f32) -> f32) -> Np {
        match Self::result_kind(self.kind, other.kind) {
            Kind::F32 => Np::f32(op32(self.v as f32, other.v as f32)),
            kind => Np {
                v: op(self.v, other.v),
                kind,
            },
        }
    }
    fn add(self, o: Np) -> Np {
        self.binary(o, |a, b| a + b, |a, b| a + b)
    }
    fn sub(self, o: Np) -> Np {
        self.binary(o, |a, b| a - b, |a, b| a - b)
    }
    fn mul(self, o: Np) -> Np {
        self.binary(o, |a, b| a * b, |a, b| a * b)
    }
    /// Compare with a Python float `c`: in float32 when `self` is `np.float32`.
    fn gt(self, c: f64) -> bool {
        if self.kind == Kind::F32 {
            (self.v as f32) > c as f32
        } else {
            self.v > c
        }
    }
    fn lt(self, c: f64) -> bool {
        if self.kind == Kind::F32 {
            (self.v as f32) < (c as f32)
        } else {
            self.v < c
        }
    }
    fn ge(self, c: f64) -> bool {
        if self.kind == Kind::F32 {
            (self.v as f32) >= c as f32
        } else {
            self.v >= c
        }
    }
    fn eq(self, c: f64) -> bool {
        if self.kind == Kind::F32 {
            (self.v as f32) == c as f32
        } else {
            self.v == c
        }
    }
}

/// The mountain car's state `[position, velocity]` and the dtype Gymnasium
/// holds it in: float64 after `reset`, float32 after `step`.
#[derive(Debug, Clone, Default)]
pub struct MountainCarContinuousModel {
    state: [f64; 2],
    state_is_f32: bool,
}

/// The continuous mountain car. Observation = state.
pub type MountainCarContinuous = Classic<MountainCarContinuousModel>;

impl Model for MountainCarContinuousModel {
    const ID: &'static str = ID;
    const STATE_NAMES: &'static str = STATE_NAMES;
    const STATE_LEN: usize = 2;
    const OBS_LEN: usize = 2;
    type Params = MountainCarContinuousParams;

    fn validate(params: &MountainCarContinuousParams) -> Result<(), EnvError> {
        params.validate()
    }

    fn spaces(p: &MountainCarContinuousParams) -> Result<(Space, Space), EnvError> {
        let f = |x: f64| x as f32 as f64;
        Ok((
            Space::Box(BoxSpace::new(
                vec![f(p.min_position), f(-p.max_speed)],
                vec![f(p.max_position), f(p.max_speed)],
            )?),
            Space::Box(BoxSpace::new(vec![-1.0], vec![1.0])?),
        ))
    }

    /// Gymnasium: `position ~ U(-0.6, -0.4)`, `velocity = 0`, stored as float64.
    fn draw_start(&mut self, _: &MountainCarContinuousParams, rng: &mut EnvRng) {
        self.load_state(&[rng.random_range(-0.6..-0.4), 0.0]);
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    /// Like Gymnasium's `reset`, the state is held as a float64 array until the first step.
    fn load_state(&mut self, state: &[f64]) {
        self.state.copy_from_slice(state);
        self.state_is_f32 = false;
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f64]) {
        obs[..2].copy_from_slice(&self.state);
    }

    /// Out-of-range forces are clipped to `[-1, 1]` for the dynamics while the
    /// action penalty `0.1 a²` uses the raw value, as in Gymnasium.
    #[inline]
    fn step(
        &mut self,
        params: &MountainCarContinuousParams,
        action: &Action,
        obs: &mut [f64],
    ) -> Result<(f64, bool), EnvError> {
        let a = finite_continuous(ID, action, 1)?;
        Ok(self.step_force(params, a[0], obs))
    }
}

impl MountainCarContinuousModel {
    /// One step with a finite force: `(reward, terminated)`.
    #[inline]
    fn step_force(
        &mut self,
        p: &MountainCarContinuousParams,
        force: f64,
        obs: &mut [f64],
    ) -> (f64, bool) {
        let (next, reward, terminated) =
            MountainCarContinuous::dynamics(p, self.state, self.state_is_f32, force as f32);
        self.state = next;
        self.state_is_f32 = true;
        self.write_obs(obs);
        (reward, terminated)
    }
}

impl MountainCarContinuous {
    /// One step of Gymnasium's update from `state` (float32 or float64 array)
    /// with the float32 action `action`. Returns `(next_state, reward, terminated)`;
    /// the next state is float32-valued.
    pub fn dynamics(
        p: &MountainCarContinuousParams,
        state: [f64; 2],
        state_is_f32: bool,
        action: f32,
    ) -> ([f64; 2], f64, bool) {
        if state_is_f32 && let Some(out) = Self::dynamics_f32(p, state, action) {
            return out;
        }
        let kind = if state_is_f32 { Kind::F32 } else { Kind::F64 };
        let mut position = Np { v: state[0], kind };
        let mut velocity = Np { v: state[1], kind };
        // force = min(max(action[0], min_action), max_action): Python's max/min keep the
        // np.float32 unless the Python-float bound wins.
        let a = Np::f32(action);
        let force = if a.lt(-1.0) {
            Np::py(-1.0)
        } else if a.gt(1.0) {
            Np::py(1.0)
        } else {
            a
        };
        // velocity += force * power - 0.0025 * math.cos(3 * position)
        let three_x = position.mul(Np::py(3.0));
        let slope = Np::py(p.gravity * three_x.v.cos());
        velocity = velocity.add(force.mul(Np::py(p.power)).sub(slope));
        if velocity.gt(p.max_speed) {
            velocity = Np::py(p.max_speed);
        }
        if velocity.lt(-p.max_speed) {
            velocity = Np::py(-p.max_speed);
        }
        position = position.add(velocity);
        if position.gt(p.max_position) {
            position = Np::py(p.max_position);
        }
        if position.lt(p.min_position) {
            position = Np::py(p.min_position);
        }
        if position.eq(p.min_position) && velocity.lt(0.0) {
            velocity = Np::py(0.0);
        }
        let terminated = position.ge(p.goal_position) && velocity.ge(p.goal_velocity);
        let mut reward = 0.0;
        if terminated {
            reward = 100.0;
        }
        // The penalty uses the unclipped action.
        let a64 = f64::from(action);
        reward -= super::py_square(a64) * 0.1; // math.pow(action[0], 2) * 0.1
        (
            [position.v as f32 as f64, velocity.v as f32 as f64],
            reward,
            terminated,
        )
    }

    /// The common case of [`Self::dynamics`] as straight float32 code: a
    /// float32 state, an action inside `[-1, 1]` (so every operand is an
    /// `np.float32` or a Python float and NEP 50 keeps every operation in
    /// float32) and no clipping of velocity or position. `None` when any of
    /// those does not hold (the general path then redoes the step).
    #[inline]
    fn dynamics_f32(
        p: &MountainCarContinuousParams,
        state: [f64; 2],
        action: f32,
    ) -> Option<([f64; 2], f64, bool)> {
        if !(-1.0..=1.0).contains(&action) {
            return None;
        }
        let (position, velocity) = (state[0] as f32, state[1] as f32);
        let three_x = position * 3.0;
        let slope = p.gravity * f64::from(three_x).cos();
        let velocity = velocity + (action * p.power as f32 - slope as f32);
        let max_speed = p.max_speed as f32;
        if velocity > max_speed || velocity < -max_speed {
            return None;
        }
        let position = position + velocity;
        let (lo, hi) = (p.min_position as f32, p.max_position as f32);
        if position > hi || position <= lo {
            return None;
        }
        let terminated = position >= p.goal_position as f32 && velocity >= p.goal_velocity as f32;
        let reward =
            if terminated { 100.0 } else { 0.0 } - super::py_square(f64::from(action)) * 0.1;
        Some((
            [f64::from(position), f64::from(velocity)],
            reward,
            terminated,
        ))
    }

    /// Allocation-free step with a scalar force.
    #[inline]
    pub fn step_force(&mut self, force: f64, obs: &mut [f64]) -> Result<(f64, bool), EnvError> {
        crate::env::check_obs_len(ID, 2, obs)?;
        if !force.is_finite() {
            return Err(EnvError::ActionNotFinite {
                env: ID.to_string(),
                index: 0,
                value: force,
            });
        }
        self.advance(obs, |m, p, o| Ok(m.step_force(p, force, o)))
    }
}
