//! Observation and action spaces: `Box`, `Discrete`, `MultiDiscrete`
//! (Gymnasium's `gymnasium.spaces` with the same sampling rules and the
//! same flattening: one-hot for discrete components).

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::env::Action;
use crate::error::EnvError;

/// A box `[low, high]` of real vectors with a shape (row-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxSpace {
    /// Lower bounds, one per component (may be `-inf`).
    pub low: Vec<f64>,
    /// Upper bounds, one per component (may be `+inf`).
    pub high: Vec<f64>,
    /// Shape; the product equals `low.len()`.
    pub shape: Vec<usize>,
}

impl BoxSpace {
    /// A box with explicit bounds and a flat shape `[low.len()]`.
    pub fn new(low: Vec<f64>, high: Vec<f64>) -> Result<Self, EnvError> {
        let shape = vec![low.len()];
        Self::with_shape(low, high, shape)
    }

    /// A box with explicit bounds and shape; checks lengths and `low <= high`.
    pub fn with_shape(low: Vec<f64>, high: Vec<f64>, shape: Vec<usize>) -> Result<Self, EnvError> {
        let n: usize = shape.iter().product();
        if low.len() != n || high.len() != n {
            return Err(EnvError::InvalidSpace {
                reason: format!(
                    "box shape {shape:?} has {n} components but low has {} and high has {}",
                    low.len(),
                    high.len()
                ),
            });
        }
        for (i, (l, h)) in low.iter().zip(&high).enumerate() {
            if l.is_nan() || h.is_nan() || l > h {
                return Err(EnvError::InvalidSpace {
                    reason: format!("box component {i}: low {l} is not <= high {h}"),
                });
            }
        }
        Ok(Self { low, high, shape })
    }

    /// The same bounds `[low, high]` for `n` components.
    pub fn uniform(low: f64, high: f64, n: usize) -> Result<Self, EnvError> {
        Self::new(vec![low; n], vec![high; n])
    }

    /// Number of components.
    pub fn dim(&self) -> usize {
        self.low.len()
    }
}

/// A space, as in Gymnasium.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Space {
    /// Real vectors in a box.
    Box(BoxSpace),
    /// Integers `start..start + n`.
    Discrete {
        /// Number of values.
        n: u64,
        /// First value (Gymnasium's `start`, usually 0).
        start: i64,
    },
    /// A vector of integers, component `i` in `0..nvec[i]`.
    MultiDiscrete {
        /// Number of values per component.
        nvec: Vec<u64>,
    },
}

impl Space {
    /// `Discrete(n)` starting at 0.
    pub fn discrete(n: u64) -> Self {
        Space::Discrete { n, start: 0 }
    }

    /// A short human-readable description, e.g. `Box(4) [-4.8, 4.8]...` or `Discrete(2)`.
    pub fn describe(&self) -> String {
        match self {
            Space::Box(b) => {
                let fmt = |v: &[f64]| {
                    let parts: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
                    format!("[{}]", parts.join(", "))
                };
                format!(
                    "Box(shape={:?}, low={}, high={})",
                    b.shape,
                    fmt(&b.low),
                    fmt(&b.high)
                )
            }
            Space::Discrete { n, start } if *start == 0 => format!("Discrete({n})"),
            Space::Discrete { n, start } => format!("Discrete({n}, start={start})"),
            Space::MultiDiscrete { nvec } => format!("MultiDiscrete({nvec:?})"),
        }
    }

    /// Length of a raw value of this space as a real vector (what `reset`/`step`
    /// write for observations): box components, 1 for `Discrete`, `nvec.len()`.
    pub fn raw_len(&self) -> usize {
        match self {
            Space::Box(b) => b.dim(),
            Space::Discrete { .. } => 1,
            Space::MultiDiscrete { nvec } => nvec.len(),
        }
    }

    /// Length after Gymnasium's `flatten`: box components, `n` (one-hot) for
    /// `Discrete`, `sum(nvec)` (concatenated one-hots) for `MultiDiscrete`.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Box(b) => b.dim(),
            Space::Discrete { n, .. } => *n as usize,
            Space::MultiDiscrete { nvec } => nvec.iter().map(|&k| k as usize).sum(),
        }
    }

    /// The box of flattened values (`gymnasium.spaces.flatten_space`).
    pub fn flatten_space(&self) -> Space {
        match self {
            Space::Box(b) => Space::Box(BoxSpace {
                low: b.low.clone(),
                high: b.high.clone(),
                shape: vec![b.dim()],
            }),
            _ => {
                let n = self.flat_dim();
                Space::Box(BoxSpace {
                    low: vec![0.0; n],
                    high: vec![1.0; n],
                    shape: vec![n],
                })
            }
        }
    }

    /// Flatten a raw value (as written by `reset`/`step`) into `out`
    /// (`out.len() == flat_dim()`), one-hot for discrete components.
    /// Returns `false` (leaving `out` zeroed where needed) when `raw` is not in the space.
    pub fn flatten_into(&self, raw: &[f64], out: &mut [f64]) -> bool {
        match self {
            Space::Box(_) => {
                out.copy_from_slice(raw);
                true
            }
            Space::Discrete { n, start } => {
                out.fill(0.0);
                let k = raw[0] - *start as f64;
                if k >= 0.0 && k < *n as f64 && k.fract() == 0.0 {
                    out[k as usize] = 1.0;
                    true
                } else {
                    false
                }
            }
            Space::MultiDiscrete { nvec } => {
                out.fill(0.0);
                let mut offset = 0;
                let mut ok = true;
                for (i, &k) in nvec.iter().enumerate() {
                    let v = raw[i];
                    if v >= 0.0 && v < k as f64 && v.fract() == 0.0 {
                        out[offset + v as usize] = 1.0;
                    } else {
                        ok = false;
                    }
                    offset += k as usize;
                }
                ok
            }
        }
    }

    /// Whether a raw real-vector value (an observation) lies in the space.
    pub fn contains_raw(&self, raw: &[f64]) -> bool {
        if raw.len() != self.raw_len() {
            return false;
        }
        match self {
            Space::Box(b) => raw
                .iter()
                .zip(b.low.iter().zip(&b.high))
                .all(|(x, (l, h))| !x.is_nan() && l <= x && x <= h),
            Space::Discrete { n, start } => {
                let k = raw[0] - *start as f64;
                k >= 0.0 && k < *n as f64 && k.fract() == 0.0
            }
            Space::MultiDiscrete { nvec } => raw
                .iter()
                .zip(nvec)
                .all(|(v, &k)| *v >= 0.0 && *v < k as f64 && v.fract() == 0.0),
        }
    }

    /// Whether an action lies in the space (`gymnasium.Space.contains`).
    pub fn contains(&self, action: &Action) -> bool {
        self.check("space", action).is_ok()
    }

    /// Like [`Space::contains`] but returns the typed error naming `env`,
    /// the component index and the value.
    pub fn check(&self, env: &str, action: &Action) -> Result<(), EnvError> {
        match (self, action) {
            (Space::Discrete { n, start }, Action::Discrete(a)) => {
                let end = start.saturating_add(*n as i64);
                if *a < *start || *a >= end {
                    return Err(EnvError::DiscreteOutOfRange {
                        env: env.to_string(),
                        index: 0,
                        value: *a,
                        start: *start,
                        end,
                    });
                }
                Ok(())
            }
            (Space::Box(b), Action::Continuous(a)) => {
                check_length(env, b.dim(), a.len())?;
                for (i, (&x, (&l, &h))) in a.iter().zip(b.low.iter().zip(&b.high)).enumerate() {
                    if !x.is_finite() {
                        return Err(EnvError::ActionNotFinite {
                            env: env.to_string(),
                            index: i,
                            value: x,
                        });
                    }
                    if x < l || x > h {
                        return Err(EnvError::ActionOutOfBounds {
                            env: env.to_string(),
                            index: i,
                            value: x,
                            low: l,
                            high: h,
                        });
                    }
                }
                Ok(())
            }
            (Space::MultiDiscrete { nvec }, Action::MultiDiscrete(a)) => {
                check_length(env, nvec.len(), a.len())?;
                for (i, (&x, &k)) in a.iter().zip(nvec).enumerate() {
                    if x < 0 || x >= k as i64 {
                        return Err(EnvError::DiscreteOutOfRange {
                            env: env.to_string(),
                            index: i,
                            value: x,
                            start: 0,
                            end: k as i64,
                        });
                    }
                }
                Ok(())
            }
            (space, action) => Err(EnvError::ActionKind {
                env: env.to_string(),
                expected: space.kind(),
                got: action.kind(),
            }),
        }
    }

    /// Name of the kind of value this space holds.
    pub fn kind(&self) -> &'static str {
        match self {
            Space::Box(_) => "continuous",
            Space::Discrete { .. } => "discrete",
            Space::MultiDiscrete { .. } => "multi-discrete",
        }
    }

    /// Sample an action uniformly, following `gymnasium.spaces.Box.sample`:
    /// bounded components uniform, half-bounded ones shifted exponential,
    /// unbounded ones standard normal.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Action {
        match self {
            Space::Discrete { n, start } => {
                Action::Discrete(*start + rng.random_range(0..(*n).max(1)) as i64)
            }
            Space::MultiDiscrete { nvec } => Action::MultiDiscrete(
                nvec.iter()
                    .map(|&k| rng.random_range(0..k.max(1)) as i64)
                    .collect(),
            ),
            Space::Box(b) => Action::Continuous(
                b.low
                    .iter()
                    .zip(&b.high)
                    .map(|(&l, &h)| match (l.is_finite(), h.is_finite()) {
                        (true, true) => {
                            if h > l {
                                l + (h - l) * rng.random::<f64>()
                            } else {
                                l
                            }
                        }
                        (true, false) => l + exponential(rng),
                        (false, true) => h - exponential(rng),
                        (false, false) => StandardNormal.sample(rng),
                    })
                    .collect(),
            ),
        }
    }
}

fn exponential<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    -(1.0 - rng.random::<f64>()).ln()
}

#[inline]
fn check_length(env: &str, expected: usize, got: usize) -> Result<(), EnvError> {
    if expected != got {
        return Err(EnvError::ActionLength {
            env: env.to_string(),
            expected,
            got,
        });
    }
    Ok(())
}

/// Validate a discrete action against `0..n` and return it as an index.
#[inline]
pub(crate) fn discrete_index(env: &str, action: &Action, n: usize) -> Result<usize, EnvError> {
    match action {
        Action::Discrete(a) if *a >= 0 && (*a as u64) < n as u64 => Ok(*a as usize),
        Action::Discrete(a) => Err(EnvError::DiscreteOutOfRange {
            env: env.to_string(),
            index: 0,
            value: *a,
            start: 0,
            end: n as i64,
        }),
        other => Err(EnvError::ActionKind {
            env: env.to_string(),
            expected: "discrete",
            got: other.kind(),
        }),
    }
}

/// Validate a continuous action's length and finiteness (not its bounds:
/// environments that clip like Gymnasium accept finite out-of-range values).
#[inline]
pub(crate) fn finite_continuous<'a>(
    env: &str,
    action: &'a Action,
    dim: usize,
) -> Result<&'a [f64], EnvError> {
    match action {
        Action::Continuous(a) => {
            check_length(env, dim, a.len())?;
            if let Some((i, &x)) = a.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(EnvError::ActionNotFinite {
                    env: env.to_string(),
                    index: i,
                    value: x,
                });
            }
            Ok(a)
        }
        other => Err(EnvError::ActionKind {
            env: env.to_string(),
            expected: "continuous",
            got: other.kind(),
        }),
    }
}
