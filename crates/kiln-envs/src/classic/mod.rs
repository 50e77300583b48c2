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
/// Fast path: glibc's `pow` is accurate to 0.52 ulp, so whenever the exact
/// square lies within 0.45 ulp of the rounded product `p = x * x` (found with
/// Dekker's exact product error), `pow` must return `p` too; only the ~10 %
/// of inputs near a rounding midpoint call `pow` (`black_box` keeps LLVM from
/// rewriting `pow(x, 2.0)` as `x * x`).
#[inline]
pub(crate) fn py_square(x: f64) -> f64 {
    let p = x * x;
    if p.is_normal() && p < 1e300 {
        // Veltkamp split and Dekker's error term: x*x = p + err exactly.
        let c = 134_217_729.0 * x;
        let hi = c - (c - x);
        let lo = x - hi;
        let err = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
        let ulp = f64::from_bits(p.to_bits() & 0x7ff0_0000_0000_0000) * f64::EPSILON;
        if err.abs() < 0.45 * ulp {
            return p;
        }
    }
    x.powf(std::hint::black_box(2.0))
}

/// NumPy's `np.float32 ** 2`: C `powf(x, 2.0f)`, which is not always the
/// rounded product either (glibc's `powf` is accurate to 0.82 ulp, too loose
/// for a fast path), so it is called directly.
#[inline]
pub(crate) fn py_square_f32(x: f32) -> f32 {
    x.powf(std::hint::black_box(2.0))
}

#[cfg(test)]
mod tests {
    use super::py_square;

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
}
