//! `Acrobot-v1`: Sutton (1996)'s two-link acrobot, the "book" dynamics of
//! Sutton & Barto integrated with one fixed RK4 step of `dt = 0.2`, exactly as
//! Gymnasium 1.x `gymnasium/envs/classic_control/acrobot.py` (`_dsdt`, `rk4`,
//! `wrap` for both angles, `bound` for both velocities, terminal when
//! `-cos θ1 - cos(θ2 + θ1) > 1`, reward −1 per non-terminal step and 0 on the
//! terminating one).

use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

use super::lanes::{self, LANES, VectorFeatures};
use super::{Classic, LaneModel, Model};
use crate::env::{Action, BatchOut, EnvRng};
use crate::error::EnvError;
use crate::space::{Space, discrete_index};

const ID: &str = "Acrobot-v1";
const STATE_NAMES: &str = "theta1, theta2, dtheta1, dtheta2";

/// Constants (Gymnasium's class attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcrobotParams {
    /// Integration step (s).
    pub dt: f64,
    /// Length of link 1 (m).
    pub link_length_1: f64,
    /// Mass of link 1 (kg).
    pub link_mass_1: f64,
    /// Mass of link 2 (kg).
    pub link_mass_2: f64,
    /// Centre of mass of link 1 (m).
    pub link_com_pos_1: f64,
    /// Centre of mass of link 2 (m).
    pub link_com_pos_2: f64,
    /// Moment of inertia of both links.
    pub link_moi: f64,
    /// Gravity.
    pub gravity: f64,
    /// Velocity bound of joint 1 (`4 pi`).
    pub max_vel_1: f64,
    /// Velocity bound of joint 2 (`9 pi`).
    pub max_vel_2: f64,
    /// `"book"` (Gymnasium default) or `"nips"` dynamics.
    pub book: bool,
}

impl Default for AcrobotParams {
    fn default() -> Self {
        Self {
            dt: 0.2,
            link_length_1: 1.0,
            link_mass_1: 1.0,
            link_mass_2: 1.0,
            link_com_pos_1: 0.5,
            link_com_pos_2: 0.5,
            link_moi: 1.0,
            gravity: 9.8,
            max_vel_1: 4.0 * PI,
            max_vel_2: 9.0 * PI,
            book: true,
        }
    }
}

impl AcrobotParams {
    fn validate(&self) -> Result<(), EnvError> {
        for (name, v) in [
            ("dt", self.dt),
            ("link_length_1", self.link_length_1),
            ("link_mass_1", self.link_mass_1),
            ("link_mass_2", self.link_mass_2),
            ("link_com_pos_1", self.link_com_pos_1),
            ("link_com_pos_2", self.link_com_pos_2),
            ("link_moi", self.link_moi),
            ("max_vel_1", self.max_vel_1),
            ("max_vel_2", self.max_vel_2),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(EnvError::param(
                    ID,
                    name,
                    v,
                    "must be a positive finite number",
                ));
            }
        }
        if !self.gravity.is_finite() {
            return Err(EnvError::param(
                ID,
                "gravity",
                self.gravity,
                "must be finite",
            ));
        }
        Ok(())
    }
}

/// Gymnasium's `AVAIL_TORQUE`.
pub const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];

/// Gymnasium's `wrap(x, m, M)`: shift by `M - m` until `m <= x <= M`.
#[inline]
pub fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

/// Gymnasium's `bound(x, m, M) = min(max(x, m), M)`.
#[inline]
pub fn bound(x: f64, m: f64, big_m: f64) -> f64 {
    let lo = if m > x { m } else { x };
    if big_m < lo { big_m } else { lo }
}

/// The acrobot's state `[theta1, theta2, dtheta1, dtheta2]` with
/// `(sin, cos)` of `theta2` (shared by the observation and the next RK4 first
/// stage) and the squares of the constants of `_dsdt`.
#[derive(Debug, Clone, Default)]
pub struct AcrobotModel {
    state: [f64; 4],
    trig_t2: (f64, f64),
    sq_const: [f64; 3],
}

/// The acrobot. Observation `[cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2]`.
pub type Acrobot = Classic<AcrobotModel>;

impl Model for AcrobotModel {
    const ID: &'static str = ID;
    const STATE_NAMES: &'static str = STATE_NAMES;
    const STATE_LEN: usize = 4;
    const OBS_LEN: usize = 6;
    type Params = AcrobotParams;

    fn validate(params: &AcrobotParams) -> Result<(), EnvError> {
        params.validate()
    }

    fn spaces(p: &AcrobotParams) -> Result<(Space, Space), EnvError> {
        Ok((
            super::symmetric_f32_box(&[1.0, 1.0, 1.0, 1.0, p.max_vel_1, p.max_vel_2])?,
            Space::discrete(3),
        ))
    }

    fn params_changed(&mut self, params: &AcrobotParams) {
        self.sq_const = Acrobot::const_squares(params);
    }

    /// Gymnasium: `state ~ U(-0.1, 0.1)^4` cast to float32.
    fn draw_start(&mut self, _: &AcrobotParams, rng: &mut EnvRng) {
        let mut start = [0.0; 4];
        for v in &mut start {
            *v = rng.random_range(-0.1..0.1_f64) as f32 as f64;
        }
        self.load_state(&start);
    }

    fn state(&self) -> &[f64] {
        &self.state
    }

    fn load_state(&mut self, state: &[f64]) {
        self.state.copy_from_slice(state);
        self.trig_t2 = self.state[1].sin_cos();
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f64]) {
        let s = &self.state;
        let (sin0, cos0) = s[0].sin_cos();
        let (sin1, cos1) = self.trig_t2;
        obs[..6].copy_from_slice(&[cos0, sin0, cos1, sin1, s[2], s[3]]);
    }

    fn step_batch<T>(
        items: &mut [T],
        inner: &impl Fn(&mut T) -> &mut Classic<Self>,
        actions: &[Action],
        out: BatchOut<'_>,
    ) -> Option<Result<(), (usize, EnvError)>> {
        super::step_lane_blocks(items, inner, actions, out)
    }

    #[inline]
    fn step(
        &mut self,
        params: &AcrobotParams,
        action: &Action,
        obs: &mut [f64],
    ) -> Result<(f64, bool), EnvError> {
        let a = discrete_index(ID, action, 3)?;
        Ok(self.step_torque(params, AVAIL_TORQUE[a], obs))
    }
}

impl AcrobotModel {
    /// One step with the torque of a valid action: `(reward, terminated)`.
    #[inline]
    fn step_torque(&mut self, p: &AcrobotParams, torque: f64, obs: &mut [f64]) -> (f64, bool) {
        self.state = Acrobot::dynamics_trig(p, &self.sq_const, self.state, torque, self.trig_t2);
        self.trig_t2 = self.state[1].sin_cos();
        self.write_obs(obs);
        // Gymnasium's `_terminal`, reusing cos(theta1) of the observation
        let terminated = -obs[0] - (self.state[1] + self.state[0]).cos() > 1.0;
        (if terminated { 0.0 } else { -1.0 }, terminated)
    }
}

/// A block of acrobots: state, `(sin, cos)` of `theta2`, torque and the step's results per lane.
#[derive(Debug, Default)]
pub struct AcrobotBlock {
    s: [[f64; LANES]; 4],
    sin_t2: [f64; LANES],
    cos_t2: [f64; LANES],
    torque: [f64; LANES],
    sin_t1: [f64; LANES],
    cos_t1: [f64; LANES],
    terminal: [bool; LANES],
}

/// The products of parameters in `_dsdt`, each computed in the order
/// [`Acrobot::dsdt_trig`] multiplies them (so the values are the same).
#[derive(Debug)]
struct AcrobotConsts {
    dt: f64,
    dt2: f64,
    h: f64,
    /// `m1 * lc1**2`
    m1_lc1_sq: f64,
    /// `l1**2 + lc2**2`
    l1_sq_lc2_sq: f64,
    /// `2 * l1 * lc2`
    two_l1_lc2: f64,
    lc2_sq: f64,
    /// `l1 * lc2`
    l1_lc2: f64,
    m2: f64,
    i1: f64,
    i2: f64,
    /// `m2 * lc2 * g`
    phi2_gain: f64,
    /// `-m2 * l1 * lc2`
    centrifugal_gain: f64,
    /// `2 * m2 * l1 * lc2`
    coriolis_gain: f64,
    /// `(m1 * lc1 + m2 * l1) * g`
    gravity_gain: f64,
    /// `m2 * l1 * lc2`
    book_gain: f64,
    /// `m2 * lc2**2 + i2`
    inertia2: f64,
    book: bool,
    max_vel_1: f64,
    max_vel_2: f64,
}

impl AcrobotConsts {
    fn new(p: &AcrobotParams) -> Self {
        let [lc1_sq, l1_sq, lc2_sq] = Acrobot::const_squares(p);
        let (m1, m2, l1, lc1, lc2) = (
            p.link_mass_1,
            p.link_mass_2,
            p.link_length_1,
            p.link_com_pos_1,
            p.link_com_pos_2,
        );
        let dt = p.dt - 0.0;
        Self {
            dt,
            dt2: dt / 2.0,
            h: dt / 6.0,
            m1_lc1_sq: m1 * lc1_sq,
            l1_sq_lc2_sq: l1_sq + lc2_sq,
            two_l1_lc2: 2.0 * l1 * lc2,
            lc2_sq,
            l1_lc2: l1 * lc2,
            m2,
            i1: p.link_moi,
            i2: p.link_moi,
            phi2_gain: m2 * lc2 * p.gravity,
            centrifugal_gain: -m2 * l1 * lc2,
            coriolis_gain: 2.0 * m2 * l1 * lc2,
            gravity_gain: (m1 * lc1 + m2 * l1) * p.gravity,
            book_gain: m2 * l1 * lc2,
            inertia2: m2 * lc2_sq + p.link_moi,
            book: p.book,
            max_vel_1: p.max_vel_1,
            max_vel_2: p.max_vel_2,
        }
    }
}

lanes::lane_kernel! {
    fn acrobot_kernel(k: &AcrobotConsts, b: &mut AcrobotBlock) = acrobot_lanes;
}

type Lanes = [f64; LANES];

/// [`Acrobot::dsdt_trig`] for every lane: `[dtheta1, dtheta2, ddtheta1, ddtheta2]`
/// (the fifth derivative, of the torque, is 0).
#[inline(always)]
fn dsdt_lanes(
    k: &AcrobotConsts,
    y: &[Lanes; 4],
    a: &Lanes,
    sin_t2: &Lanes,
    cos_t2: &Lanes,
) -> [Lanes; 4] {
    // The four values that depend on `y` alone in one vector pass, then the
    // C library for all their undecided lanes: one scalar phase per stage
    // instead of one between every two vector loops.
    let (mut arg2, mut arg1) = ([0.0; LANES], [0.0; LANES]);
    let (mut cos2, mut cos1) = ([0.0; LANES], [0.0; LANES]);
    let (mut dth2_sq, mut dth1_sq) = ([0.0; LANES], [0.0; LANES]);
    let mut ok = [[false; LANES]; 4];
    for i in 0..LANES {
        arg2[i] = y[0][i] + y[1][i] - PI / 2.0;
        arg1[i] = y[0][i] - PI / 2.0;
        (cos2[i], ok[0][i]) = lanes::cos_lane(arg2[i]);
        (cos1[i], ok[1][i]) = lanes::cos_lane(arg1[i]);
        (dth2_sq[i], ok[2][i]) = super::py_square_fast(y[3][i]);
        (dth1_sq[i], ok[3][i]) = super::py_square_fast(y[2][i]);
    }
    lanes::for_each_bit(lanes::undecided(&ok[0]), |i| cos2[i] = arg2[i].cos());
    lanes::for_each_bit(lanes::undecided(&ok[1]), |i| cos1[i] = arg1[i].cos());
    lanes::for_each_bit(lanes::undecided(&ok[2]), |i| {
        dth2_sq[i] = super::py_square(y[3][i]);
    });
    lanes::for_each_bit(lanes::undecided(&ok[3]), |i| {
        dth1_sq[i] = super::py_square(y[2][i]);
    });
    let (mut d1, mut d2, mut phi1, mut phi2) =
        ([0.0; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    for i in 0..LANES {
        let (dtheta1, dtheta2) = (y[2][i], y[3][i]);
        d1[i] = k.m1_lc1_sq + k.m2 * (k.l1_sq_lc2_sq + k.two_l1_lc2 * cos_t2[i]) + k.i1 + k.i2;
        d2[i] = k.m2 * (k.lc2_sq + k.l1_lc2 * cos_t2[i]) + k.i2;
        phi2[i] = k.phi2_gain * cos2[i];
        phi1[i] = k.centrifugal_gain * dth2_sq[i] * sin_t2[i]
            - k.coriolis_gain * dtheta2 * dtheta1 * sin_t2[i]
            + k.gravity_gain * cos1[i]
            + phi2[i];
    }
    let mut d2_sq = [0.0; LANES];
    lanes::py_square_lanes(&d2, &mut d2_sq);
    let mut out = [y[2], y[3], [0.0; LANES], [0.0; LANES]];
    for i in 0..LANES {
        let ddtheta2 = if k.book {
            (a[i] + d2[i] / d1[i] * phi1[i] - k.book_gain * dth1_sq[i] * sin_t2[i] - phi2[i])
                / (k.inertia2 - d2_sq[i] / d1[i])
        } else {
            (a[i] + d2[i] / d1[i] * phi1[i] - phi2[i]) / (k.inertia2 - d2_sq[i] / d1[i])
        };
        out[2][i] = -(d2[i] * ddtheta2 + phi1[i]) / d1[i];
        out[3][i] = ddtheta2;
    }
    out
}

/// `y0 + h k` for the four state components and the torque (whose derivative is 0).
#[inline(always)]
fn stage(y0: &[Lanes; 4], a: &Lanes, h: f64, k: &[Lanes; 4]) -> ([Lanes; 4], Lanes) {
    let mut y = [[0.0; LANES]; 4];
    let mut at = [0.0; LANES];
    for i in 0..LANES {
        for c in 0..4 {
            y[c][i] = y0[c][i] + h * k[c][i];
        }
        at[i] = a[i] + h * 0.0;
    }
    (y, at)
}

/// [`Acrobot::dynamics_trig`], the next `(sin, cos)` of both angles and the
/// terminal test for every lane, operation for operation.
#[inline(always)]
// lane loops index several arrays in lockstep; `&` of comparisons has no branch
#[allow(clippy::needless_range_loop, clippy::manual_range_contains)]
fn acrobot_lanes(k: &AcrobotConsts, b: &mut AcrobotBlock) {
    let y0 = b.s;
    let a = b.torque;
    let (mut sin_t2, mut cos_t2) = ([0.0; LANES], [0.0; LANES]);
    let k1 = dsdt_lanes(k, &y0, &a, &b.sin_t2, &b.cos_t2);
    let (y, at) = stage(&y0, &a, k.dt2, &k1);
    lanes::sin_cos_lanes(&y[1], &mut sin_t2, &mut cos_t2);
    let k2 = dsdt_lanes(k, &y, &at, &sin_t2, &cos_t2);
    let (y, at) = stage(&y0, &a, k.dt2, &k2);
    lanes::sin_cos_lanes(&y[1], &mut sin_t2, &mut cos_t2);
    let k3 = dsdt_lanes(k, &y, &at, &sin_t2, &cos_t2);
    let (y, at) = stage(&y0, &a, k.dt, &k3);
    lanes::sin_cos_lanes(&y[1], &mut sin_t2, &mut cos_t2);
    let k4 = dsdt_lanes(k, &y, &at, &sin_t2, &cos_t2);
    let mut wrapped = [true; LANES];
    for i in 0..LANES {
        let mut ns = [0.0; 4];
        for c in 0..4 {
            ns[c] = y0[c][i] + k.h * (k1[c][i] + 2.0 * k2[c][i] + 2.0 * k3[c][i] + k4[c][i]);
        }
        // one shift of `wrap` covers every angle an RK4 step reaches from [-pi, pi]
        for c in 0..2 {
            let x = ns[c];
            let w = if x > PI {
                x - 2.0 * PI
            } else if x < -PI {
                x + 2.0 * PI
            } else {
                x
            };
            wrapped[i] &= (w <= PI) & (w >= -PI);
            b.s[c][i] = if (w <= PI) & (w >= -PI) { w } else { x };
        }
        b.s[2][i] = bound(ns[2], -k.max_vel_1, k.max_vel_1);
        b.s[3][i] = bound(ns[3], -k.max_vel_2, k.max_vel_2);
    }
    for i in 0..LANES {
        if !wrapped[i] {
            b.s[0][i] = wrap(b.s[0][i], -PI, PI);
            b.s[1][i] = wrap(b.s[1][i], -PI, PI);
        }
    }
    let (th1, th2) = (b.s[0], b.s[1]);
    // one vector pass for the five values, then the C library (as in `dsdt_lanes`)
    let mut sum = [0.0; LANES];
    let mut cos_sum = [0.0; LANES];
    let mut ok = [[false; LANES]; 5];
    for i in 0..LANES {
        sum[i] = th2[i] + th1[i];
        (b.sin_t2[i], b.cos_t2[i], ok[0][i], ok[1][i]) = lanes::sin_cos_lane(th2[i]);
        (b.sin_t1[i], b.cos_t1[i], ok[2][i], ok[3][i]) = lanes::sin_cos_lane(th1[i]);
        (cos_sum[i], ok[4][i]) = lanes::cos_lane(sum[i]);
    }
    lanes::for_each_bit(lanes::undecided(&ok[0]), |i| b.sin_t2[i] = th2[i].sin());
    lanes::for_each_bit(lanes::undecided(&ok[1]), |i| b.cos_t2[i] = th2[i].cos());
    lanes::for_each_bit(lanes::undecided(&ok[2]), |i| b.sin_t1[i] = th1[i].sin());
    lanes::for_each_bit(lanes::undecided(&ok[3]), |i| b.cos_t1[i] = th1[i].cos());
    lanes::for_each_bit(lanes::undecided(&ok[4]), |i| cos_sum[i] = sum[i].cos());
    for i in 0..LANES {
        b.terminal[i] = -b.cos_t1[i] - cos_sum[i] > 1.0;
    }
}

impl LaneModel for AcrobotModel {
    type Block = AcrobotBlock;

    #[inline]
    fn load(&self, action: &Action, lane: usize, b: &mut AcrobotBlock) -> bool {
        match action {
            Action::Discrete(a) if (0..3).contains(a) => {
                for c in 0..4 {
                    b.s[c][lane] = self.state[c];
                }
                (b.sin_t2[lane], b.cos_t2[lane]) = self.trig_t2;
                b.torque[lane] = AVAIL_TORQUE[*a as usize];
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn run(features: VectorFeatures, p: &AcrobotParams, b: &mut AcrobotBlock) {
        acrobot_kernel(features, &AcrobotConsts::new(p), b);
    }

    #[inline]
    fn store(&mut self, lane: usize, b: &AcrobotBlock, obs: &mut [f64]) -> (f64, bool) {
        self.state = [b.s[0][lane], b.s[1][lane], b.s[2][lane], b.s[3][lane]];
        self.trig_t2 = (b.sin_t2[lane], b.cos_t2[lane]);
        obs[..6].copy_from_slice(&[
            b.cos_t1[lane],
            b.sin_t1[lane],
            b.cos_t2[lane],
            b.sin_t2[lane],
            self.state[2],
            self.state[3],
        ]);
        let terminated = b.terminal[lane];
        (if terminated { 0.0 } else { -1.0 }, terminated)
    }
}

impl Acrobot {
    /// Gymnasium's `_dsdt` on the augmented state `[θ1, θ2, θ̇1, θ̇2, torque]`.
    #[inline]
    fn dsdt(p: &AcrobotParams, sq_const: &[f64; 3], s: &[f64; 5]) -> [f64; 5] {
        Self::dsdt_trig(p, sq_const, s, s[1].sin_cos())
    }

    /// `_dsdt` with `(sin θ2, cos θ2)` supplied (reused from the observation for RK4's first stage).
    #[inline]
    fn dsdt_trig(
        p: &AcrobotParams,
        sq_const: &[f64; 3],
        s: &[f64; 5],
        trig_t2: (f64, f64),
    ) -> [f64; 5] {
        // every `**2` of Gymnasium's `_dsdt` is a C `pow` (see `py_square`);
        // the squares of the constants are computed once per step
        let sq = super::py_square;
        let [lc1_sq, l1_sq, lc2_sq] = *sq_const;
        let m1 = p.link_mass_1;
        let m2 = p.link_mass_2;
        let l1 = p.link_length_1;
        let lc1 = p.link_com_pos_1;
        let lc2 = p.link_com_pos_2;
        let i1 = p.link_moi;
        let i2 = p.link_moi;
        let g = p.gravity;
        let a = s[4];
        let (theta1, theta2, dtheta1, dtheta2) = (s[0], s[1], s[2], s[3]);
        let (sin_t2, cos_t2) = trig_t2;
        let d1 = m1 * lc1_sq + m2 * (l1_sq + lc2_sq + 2.0 * l1 * lc2 * cos_t2) + i1 + i2;
        let d2 = m2 * (lc2_sq + l1 * lc2 * cos_t2) + i2;
        let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
        let phi1 = -m2 * l1 * lc2 * sq(dtheta2) * sin_t2
            - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin_t2
            + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
            + phi2;
        let ddtheta2 = if p.book {
            (a + d2 / d1 * phi1 - m2 * l1 * lc2 * sq(dtheta1) * sin_t2 - phi2)
                / (m2 * lc2_sq + i2 - sq(d2) / d1)
        } else {
            (a + d2 / d1 * phi1 - phi2) / (m2 * lc2_sq + i2 - sq(d2) / d1)
        };
        let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
        [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
    }

    /// One Gymnasium step: RK4 over `[0, dt]`, wrap angles, bound velocities.
    #[inline]
    pub fn dynamics(p: &AcrobotParams, s: [f64; 4], torque: f64) -> [f64; 4] {
        Self::dynamics_trig(p, &Self::const_squares(p), s, torque, s[1].sin_cos())
    }

    /// The squares of the constants in `_dsdt` (`lc1**2`, `l1**2`, `lc2**2`), as C `pow`.
    fn const_squares(p: &AcrobotParams) -> [f64; 3] {
        let sq = super::py_square;
        [
            sq(p.link_com_pos_1),
            sq(p.link_length_1),
            sq(p.link_com_pos_2),
        ]
    }

    #[inline]
    fn dynamics_trig(
        p: &AcrobotParams,
        c: &[f64; 3],
        s: [f64; 4],
        torque: f64,
        trig_t2: (f64, f64),
    ) -> [f64; 4] {
        let y0 = [s[0], s[1], s[2], s[3], torque];
        let dt = p.dt - 0.0;
        let dt2 = dt / 2.0;
        let axpy = |y: &[f64; 5], h: f64, k: &[f64; 5]| -> [f64; 5] {
            std::array::from_fn(|i| y[i] + h * k[i])
        };
        let k1 = Self::dsdt_trig(p, c, &y0, trig_t2);
        let k2 = Self::dsdt(p, c, &axpy(&y0, dt2, &k1));
        let k3 = Self::dsdt(p, c, &axpy(&y0, dt2, &k2));
        let k4 = Self::dsdt(p, c, &axpy(&y0, dt, &k3));
        let h = dt / 6.0;
        let ns: [f64; 4] =
            std::array::from_fn(|i| y0[i] + h * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]));
        [
            wrap(ns[0], -PI, PI),
            wrap(ns[1], -PI, PI),
            bound(ns[2], -p.max_vel_1, p.max_vel_1),
            bound(ns[3], -p.max_vel_2, p.max_vel_2),
        ]
    }

    /// Gymnasium's `_terminal`.
    #[inline]
    pub fn is_terminal(s: &[f64; 4]) -> bool {
        -s[0].cos() - (s[1] + s[0]).cos() > 1.0
    }

    /// Allocation-free step for a known action index.
    #[inline]
    pub fn step_index(&mut self, action: usize, obs: &mut [f64]) -> Result<(f64, bool), EnvError> {
        crate::env::check_obs_len(ID, 6, obs)?;
        let torque = *AVAIL_TORQUE
            .get(action)
            .ok_or_else(|| EnvError::DiscreteOutOfRange {
                env: ID.to_string(),
                index: 0,
                value: action as i64,
                start: 0,
                end: 3,
            })?;
        self.advance(obs, |m, p, o| Ok(m.step_torque(p, torque, o)))
    }
}
