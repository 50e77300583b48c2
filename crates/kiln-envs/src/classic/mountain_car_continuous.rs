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

/// `(gravity * cos(x)) as f32` with `cos` the C library's, as Gymnasium's
/// float32 update uses it, without calling `cos` in nearly every case.
///
/// Only the float32 rounding of the product reaches the state, so `cos` need
/// not be reproduced to the last bit: [`cos_near`] errs by at most 2^-45 and
/// glibc's `cos` by 0.55 ulp (below 2^-53 on `[-1, 1]`), so the float64
/// products differ by at most `|gravity| (2^-45 + 2^-53)` plus their own
/// roundings. When the product lies farther than that from every float32
/// rounding boundary (all but about 1 in 10^6 inputs), both round to the
/// same float32; otherwise this calls `cos`. (`cos` was half of the step's
/// time, and the single-environment step is one dependency chain through it,
/// so [`cos_near`] is built for latency.)
#[inline]
fn slope_f32(gravity: f64, x: f32) -> f32 {
    const MANTISSA: u32 = 0x007f_ffff;
    let xd = f64::from(x);
    if let Some(c) = cos_near(xd) {
        let s = gravity * c;
        let r = s as f32;
        let half_ulp =
            0.5 * f64::from(f32::from_bits(r.to_bits() & 0x7f80_0000)) * f64::from(f32::EPSILON);
        // |gravity| (2^-45 + 2^-53) + |s| 2^-51 (the two float64 roundings, generously)
        let margin =
            gravity.abs() * 2.853_273_173_286_652e-14 + s.abs() * 4.440_892_098_500_626e-16;
        let normal = (r.abs() >= f32::MIN_POSITIVE) & r.is_finite();
        if normal & (r.to_bits() & MANTISSA != 0) & ((s - f64::from(r)).abs() + margin < half_ulp) {
            return r;
        }
    }
    (gravity * xd.cos()) as f32
}

/// Table steps per unit of `x` in [`cos_near`].
const STEPS: f64 = 128.0;
/// Table entries each side of 0 (`|x| <= 4`).
const HALF_TABLE: usize = 512;

/// `cos x` for `|x| <= 4` to within 2^-45 (`None` outside): the nearest
/// multiple `a` of 1/128 from a table of the C library's `cos a` and `sin a`,
/// and `cos(a + d) = cos a - d sin a - d^2/2 cos a + d^3/6 sin a + d^4/24 cos a`
/// for `|d| <= 1/256` (the next term is below 2^-46.9), in Estrin's order for
/// a short dependency chain.
#[inline]
fn cos_near(x: f64) -> Option<f64> {
    // 1.5 * 2^52 / 128: adding it rounds x to a multiple of 1/128 (the sum's ulp).
    const ROUND_MAGIC: f64 = 52_776_558_133_248.0;
    if x.is_nan() || x.abs() > 4.0 {
        return None;
    }
    let table = TRIG_TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let a = (i as f64 - HALF_TABLE as f64) / STEPS;
            (a.cos(), a.sin())
        })
    });
    let t = x + ROUND_MAGIC;
    // the sum's low mantissa bits count 1/128 steps: the table index
    let index = (t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()) as usize).wrapping_add(HALF_TABLE);
    let d = x - (t - ROUND_MAGIC); // exact
    let (cos_a, sin_a) = *table.get(index)?;
    let z = d * d;
    let tail = z * (-0.5 * cos_a + d * (sin_a * (1.0 / 6.0))) + (z * z) * (cos_a * (1.0 / 24.0));
    Some((cos_a - sin_a * d) + tail)
}

/// `(cos, sin)` of `k / 128` for `k` in `-512..=512` (see [`cos_near`]).
static TRIG_TABLE: std::sync::OnceLock<[(f64, f64); 2 * HALF_TABLE + 1]> =
    std::sync::OnceLock::new();

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
        if state_is_f32
            && let Some(([x, v], reward, terminated)) =
                Self::dynamics_f32(p, [state[0] as f32, state[1] as f32], action)
        {
            return ([f64::from(x), f64::from(v)], reward, terminated);
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
        state: [f32; 2],
        action: f32,
    ) -> Option<([f32; 2], f64, bool)> {
        if !(-1.0..=1.0).contains(&action) {
            return None;
        }
        let [position, velocity] = state;
        let three_x = position * 3.0;
        let slope = slope_f32(p.gravity, three_x);
        let velocity = velocity + (action * p.power as f32 - slope);
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
        Some(([position, velocity], reward, terminated))
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

#[cfg(test)]
mod tests {
    use super::{cos_near, slope_f32};
    use rand::{RngExt, SeedableRng};

    /// The table cosine stays within its 2^-45 error bound of the C library's.
    #[test]
    fn cos_near_is_within_its_bound() {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(11);
        for _ in 0..200_000 {
            let x = rng.random_range(-4.0..=4.0);
            let c = cos_near(x).expect("in range");
            assert!((c - x.cos()).abs() <= 2f64.powi(-45), "x = {x:e}");
        }
        assert!(cos_near(4.1).is_none() && cos_near(f64::NAN).is_none());
    }

    fn check_slope(gravity: f64, x: f32) {
        let want = (gravity * f64::from(x).cos()) as f32;
        assert_eq!(
            slope_f32(gravity, x).to_bits(),
            want.to_bits(),
            "gravity {gravity:e}, x {x:e}"
        );
    }

    /// The slope equals the one through the C library's `cos`, bit for bit,
    /// over MountainCar's range of `3 x` and beyond, for other gravities and
    /// at the zeros of `cos`.
    #[test]
    fn slope_equals_libm_slope() {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(12);
        for i in 0..300_000 {
            let x = match i % 3 {
                0 => rng.random_range(-1.2f32..=0.6) * 3.0,
                1 => rng.random_range(-5.0f32..5.0),
                _ => {
                    f32::from_bits(
                        (std::f32::consts::FRAC_PI_2.to_bits() as i32 + rng.random_range(-200..200))
                            as u32,
                    ) * if rng.random() { 1.0 } else { -1.0 }
                }
            };
            check_slope(0.0025, x);
            if i % 10 == 0 {
                check_slope(rng.random_range(-10.0..10.0), x);
            }
        }
        for g in [0.0, -0.0, 1e300, f64::MAX, 1e-310] {
            check_slope(g, 1.0);
        }
    }

    /// Every float32 `3 x` MountainCar can produce, `x` in `[-1.2, 0.6]`.
    #[test]
    #[ignore = "slow: 2 * 10^9 float32 values"]
    fn slope_equals_libm_slope_exhaustively() {
        let lo = -3.6f32;
        let hi = 1.8f32;
        let mut x = lo;
        while x <= hi {
            check_slope(0.0025, x);
            x = if x < 0.0 {
                f32::from_bits(x.to_bits() - 1)
            } else if x == 0.0 {
                f32::from_bits(1)
            } else {
                f32::from_bits(x.to_bits() + 1)
            };
            if x == -0.0 {
                x = 0.0;
            }
        }
    }
}
