//! Classic control, numerically identical to Gymnasium 1.x (see each file for
//! the float32 details). Trajectories recorded from Gymnasium by
//! `benches/peers/gym_trajectories.py` are replayed in `tests/gymnasium_trajectories.rs`.

pub mod acrobot;
pub mod cartpole;
pub mod mountain_car_continuous;
pub mod pendulum;

pub use acrobot::{Acrobot, AcrobotParams};
pub use cartpole::{CartPole, CartPoleParams};
pub use mountain_car_continuous::{MountainCarContinuous, MountainCarContinuousParams};
pub use pendulum::{Pendulum, PendulumParams};

/// Python's and NumPy's scalar `x ** 2`: both call the C library's `pow(x, 2.0)`,
/// which is not always the correctly rounded `x * x` (about 1 in 1,000 inputs
/// differ in the last bit). Chaotic dynamics such as Acrobot amplify that bit
/// to 1e-4 within 300 steps, so the ports reproduce `pow` exactly.
///
/// Fast path: glibc's `pow` (Arm's `pow.c`) errs by at most
/// `0.509 ulp + |y ln x| · 1.3·2^-68 · 2^53` (0.511 ulp without FMA); for
/// `x² ∈ [2^-60, 2^60]` (`|2 ln x| < 42`) that is below 0.513 ulp. So whenever
/// the exact square lies within 0.47 ulp of the rounded product `p = x * x`
/// (found with Dekker's exact product error), every other double is more
/// than 0.53 ulp away and `pow` must return `p` too. Only the ~6 % of inputs
/// near a rounding midpoint, squares that round to a power of two (where the
/// spacing below halves) and squares outside that range call `pow`
/// (`black_box` keeps LLVM from rewriting `pow(x, 2.0)` as `x * x`).
#[inline]
pub(crate) fn py_square(x: f64) -> f64 {
    const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
    let p = x * x;
    if (8.673_617_379_884_035e-19..1.152_921_504_606_847e18).contains(&p) {
        // Veltkamp split and Dekker's error term: x*x = p + err exactly.
        let c = 134_217_729.0 * x;
        let hi = c - (c - x);
        let lo = x - hi;
        let err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
        let ulp = f64::from_bits(p.to_bits() & 0x7ff0_0000_0000_0000) * f64::EPSILON;
        if err == 0.0 || (err.abs() < 0.47 * ulp && p.to_bits() & MANTISSA != 0) {
            return p;
        }
    }
    x.powf(std::hint::black_box(2.0))
}

/// NumPy's `np.float32 ** 2`: C `powf(x, 2.0f)`, which is not always the
/// rounded product either.
///
/// Fast path: the square of a float32 is exact in float64, so its float32
/// rounding `r` and distance `err` to it are exact. glibc's `powf` (Arm's
/// `powf.c`) rounds a double approximation whose relative error is at most
/// `ln 2 · |y log2 x| · 1.83·2^-33 + 1.69·2^-34`; for `|x| ∈ [2^-8, 2^8]`
/// (`|2 log2 x| ≤ 16`) that is below `2^-28.6`, i.e. 0.042 float32 ulp. So
/// when the exact square lies within 0.45 ulp of `r`, the approximation lies
/// within 0.5 ulp and rounds to `r` as well. Other inputs (about 10 %) call `powf`.
#[inline]
pub(crate) fn py_square_f32(x: f32) -> f32 {
    const MANTISSA: u32 = 0x007f_ffff;
    let ax = x.abs();
    if (0.003_906_25..=256.0).contains(&ax) {
        let e = f64::from(x) * f64::from(x);
        let r = e as f32;
        let err = e - f64::from(r); // exact (both within one float32 ulp)
        let ulp = f64::from(f32::from_bits(r.to_bits() & 0x7f80_0000)) * f64::from(f32::EPSILON);
        if err == 0.0 || (err.abs() < 0.45 * ulp && r.to_bits() & MANTISSA != 0) {
            return r;
        }
    }
    x.powf(std::hint::black_box(2.0))
}

#[cfg(test)]
mod tests {
    use super::{py_square, py_square_f32};

    /// Inputs where CPython's `math.pow(x, 2)` (glibc `pow`) differs from `x * x`,
    /// with CPython's results.
    #[test]
    fn py_square_reproduces_glibc_pow() {
        for (x, pow) in [
            (-24.435271468597154, 597.0824917440382),
            (-25.105114065349373, 630.2667522342028),
            (22.698423459684612, 515.2184275551607),
            (-26.510845261123965, 702.824916459259),
            (19.173117232664723, 367.6084244175049),
            (-4.538090481849405, 20.59426522145217),
            (-7.253990778484905, 52.62038221434404),
        ] {
            assert_ne!(x * x, pow);
            assert_eq!(py_square(x), pow, "x = {x}");
        }
        for x in [0.0, 1.0, -3.0, 0.5, 1e-200, 1e200] {
            assert_eq!(py_square(x), x.powf(2.0));
        }
    }

    /// The fast paths agree with the C library bit for bit.
    #[test]
    fn py_squares_agree_with_libm() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(3);
        let black = std::hint::black_box(2.0);
        for i in 0..1_000_000 {
            let x: f64 = match i % 3 {
                0 => rng.random_range(-10.0..10.0),
                1 => rng.random_range(-40.0..40.0),
                _ => rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-12..12)),
            };
            assert_eq!(py_square(x).to_bits(), x.powf(black).to_bits(), "x = {x:e}");
            let y = x as f32;
            let blackf = std::hint::black_box(2.0f32);
            assert_eq!(py_square_f32(y).to_bits(), y.powf(blackf).to_bits(), "x = {y:e}");
        }
        for y in [0.0f32, -0.0, 2.0, -2.0, 0.003_906_25, 256.0, 1e-30, 1e30] {
            assert_eq!(py_square_f32(y).to_bits(), y.powf(2.0).to_bits(), "x = {y:e}");
        }
    }

    /// Every float32 in the fast path's range, positive and negative.
    #[test]
    #[ignore = "slow: 268 million powf calls"]
    fn py_square_f32_agrees_with_powf_exhaustively() {
        let two = std::hint::black_box(2.0f32);
        let (lo, hi) = (0.003_906_25f32.to_bits(), 256.0f32.to_bits());
        for bits in lo..=hi {
            for y in [f32::from_bits(bits), -f32::from_bits(bits)] {
                assert_eq!(py_square_f32(y).to_bits(), y.powf(two).to_bits(), "x = {y:e}");
            }
        }
    }
}
