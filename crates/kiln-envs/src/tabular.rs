//! Tabular MDPs as plain data, their generators (gridworld, RiverSwim,
//! Garnet) and conversion into an [`Env`].
//!
//! [`TabularMdp`] is the exchange type for the robust-MDP solvers and the
//! dataset studies: a transition tensor `P[s][a][s']` stored flat, rewards
//! `R[s][a]`, an initial distribution `mu[s]` and a discount `gamma`. Its JSON
//! form is
//!
//! ```json
//! {"n_states": 2, "n_actions": 1, "gamma": 0.9,
//!  "transitions": [[[0.5, 0.5]], [[0.0, 1.0]]],
//!  "rewards": [[1.0], [0.0]],
//!  "initial": [1.0, 0.0]}
//! ```
//!
//! and every constructor (including deserialization) validates it, naming the
//! state and action of a bad row.

use rand::{Rng, RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::env::{Action, Env, EnvRng, Info, Phase, Transition, check_obs_len, env_rng};
use crate::error::EnvError;
use crate::space::{Space, discrete_index};

/// Tolerance for probabilities summing to one.
pub const SUM_TOLERANCE: f64 = 1e-9;

/// Validation errors of a tabular MDP.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MdpError {
    /// An array has the wrong length.
    #[error("tabular MDP: `{field}` has length {got}, expected {expected}{at}")]
    Shape {
        /// Field name (`transitions`, `rewards`, `initial`).
        field: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
        /// Where, e.g. " at state 3, action 1".
        at: String,
    },
    /// A transition probability is negative or not finite.
    #[error(
        "tabular MDP: P[s={state}][a={action}][s'={next_state}] = {value} is not a probability"
    )]
    BadProbability {
        /// State.
        state: usize,
        /// Action.
        action: usize,
        /// Next state.
        next_state: usize,
        /// Value.
        value: f64,
    },
    /// A transition row does not sum to one.
    #[error("tabular MDP: P[s={state}][a={action}][·] sums to {sum}, not 1")]
    RowSum {
        /// State.
        state: usize,
        /// Action.
        action: usize,
        /// Actual sum.
        sum: f64,
    },
    /// A reward is not finite.
    #[error("tabular MDP: R[s={state}][a={action}] = {value} is not finite")]
    Reward {
        /// State.
        state: usize,
        /// Action.
        action: usize,
        /// Value.
        value: f64,
    },
    /// The initial distribution is invalid.
    #[error("tabular MDP: initial distribution {reason} (state {state}, value {value})")]
    Initial {
        /// What is wrong.
        reason: &'static str,
        /// State (or the number of states for a sum error).
        state: usize,
        /// Value (or the sum).
        value: f64,
    },
    /// The discount is outside `[0, 1]`.
    #[error("tabular MDP: gamma = {0} is outside [0, 1]")]
    Gamma(f64),
    /// There are no states or no actions.
    #[error(
        "tabular MDP: needs at least one state and one action (n_states = {n_states}, n_actions = {n_actions})"
    )]
    Empty {
        /// Number of states.
        n_states: usize,
        /// Number of actions.
        n_actions: usize,
    },
    /// A generator parameter is invalid.
    #[error("{generator}: parameter `{field}` = {value}: {reason}")]
    Generator {
        /// Generator name.
        generator: &'static str,
        /// Parameter.
        field: &'static str,
        /// Value as text.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

/// A finite MDP `(S, A, P, R, mu, gamma)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TabularMdpJson", into = "TabularMdpJson")]
pub struct TabularMdp {
    /// Number of states.
    pub n_states: usize,
    /// Number of actions.
    pub n_actions: usize,
    /// Discount factor in `[0, 1]`.
    pub gamma: f64,
    /// `P[s][a][s']` flat, index `(s * n_actions + a) * n_states + s'`.
    pub transitions: Vec<f64>,
    /// `R[s][a]` flat, index `s * n_actions + a` (expected reward of taking `a` in `s`).
    pub rewards: Vec<f64>,
    /// Initial distribution `mu[s]`.
    pub initial: Vec<f64>,
}

/// The nested-array JSON form of [`TabularMdp`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TabularMdpJson {
    n_states: usize,
    n_actions: usize,
    gamma: f64,
    transitions: Vec<Vec<Vec<f64>>>,
    rewards: Vec<Vec<f64>>,
    initial: Vec<f64>,
}

impl TryFrom<TabularMdpJson> for TabularMdp {
    type Error = MdpError;
    fn try_from(j: TabularMdpJson) -> Result<Self, MdpError> {
        let (ns, na) = (j.n_states, j.n_actions);
        if j.transitions.len() != ns {
            return Err(MdpError::Shape {
                field: "transitions",
                expected: ns,
                got: j.transitions.len(),
                at: String::new(),
            });
        }
        if j.rewards.len() != ns {
            return Err(MdpError::Shape {
                field: "rewards",
                expected: ns,
                got: j.rewards.len(),
                at: String::new(),
            });
        }
        let mut p = Vec::with_capacity(ns * na * ns);
        for (s, row) in j.transitions.iter().enumerate() {
            if row.len() != na {
                return Err(MdpError::Shape {
                    field: "transitions",
                    expected: na,
                    got: row.len(),
                    at: format!(" at state {s}"),
                });
            }
            for (a, dist) in row.iter().enumerate() {
                if dist.len() != ns {
                    return Err(MdpError::Shape {
                        field: "transitions",
                        expected: ns,
                        got: dist.len(),
                        at: format!(" at state {s}, action {a}"),
                    });
                }
                p.extend_from_slice(dist);
            }
        }
        let mut r = Vec::with_capacity(ns * na);
        for (s, row) in j.rewards.iter().enumerate() {
            if row.len() != na {
                return Err(MdpError::Shape {
                    field: "rewards",
                    expected: na,
                    got: row.len(),
                    at: format!(" at state {s}"),
                });
            }
            r.extend_from_slice(row);
        }
        TabularMdp::new(ns, na, j.gamma, p, r, j.initial)
    }
}

impl From<TabularMdp> for TabularMdpJson {
    fn from(m: TabularMdp) -> Self {
        let (ns, na) = (m.n_states, m.n_actions);
        TabularMdpJson {
            n_states: ns,
            n_actions: na,
            gamma: m.gamma,
            transitions: (0..ns)
                .map(|s| {
                    (0..na)
                        .map(|a| m.next_state_distribution(s, a).to_vec())
                        .collect()
                })
                .collect(),
            rewards: (0..ns)
                .map(|s| m.rewards[s * na..(s + 1) * na].to_vec())
                .collect(),
            initial: m.initial,
        }
    }
}

impl TabularMdp {
    /// Build and validate.
    pub fn new(
        n_states: usize,
        n_actions: usize,
        gamma: f64,
        transitions: Vec<f64>,
        rewards: Vec<f64>,
        initial: Vec<f64>,
    ) -> Result<Self, MdpError> {
        let m = Self {
            n_states,
            n_actions,
            gamma,
            transitions,
            rewards,
            initial,
        };
        m.validate()?;
        Ok(m)
    }

    /// Check shapes, probabilities (non-negative, rows summing to 1 within
    /// [`SUM_TOLERANCE`]), finite rewards, the initial distribution and `gamma`.
    pub fn validate(&self) -> Result<(), MdpError> {
        let (ns, na) = (self.n_states, self.n_actions);
        if ns == 0 || na == 0 {
            return Err(MdpError::Empty {
                n_states: ns,
                n_actions: na,
            });
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(MdpError::Gamma(self.gamma));
        }
        if self.transitions.len() != ns * na * ns {
            return Err(MdpError::Shape {
                field: "transitions",
                expected: ns * na * ns,
                got: self.transitions.len(),
                at: String::new(),
            });
        }
        if self.rewards.len() != ns * na {
            return Err(MdpError::Shape {
                field: "rewards",
                expected: ns * na,
                got: self.rewards.len(),
                at: String::new(),
            });
        }
        if self.initial.len() != ns {
            return Err(MdpError::Shape {
                field: "initial",
                expected: ns,
                got: self.initial.len(),
                at: String::new(),
            });
        }
        for s in 0..ns {
            for a in 0..na {
                let row = self.next_state_distribution(s, a);
                if let Some((sp, &v)) = row
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
                {
                    return Err(MdpError::BadProbability {
                        state: s,
                        action: a,
                        next_state: sp,
                        value: v,
                    });
                }
                let sum: f64 = row.iter().sum();
                if (sum - 1.0).abs() > SUM_TOLERANCE {
                    return Err(MdpError::RowSum {
                        state: s,
                        action: a,
                        sum,
                    });
                }
                let r = self.reward(s, a);
                if !r.is_finite() {
                    return Err(MdpError::Reward {
                        state: s,
                        action: a,
                        value: r,
                    });
                }
            }
        }
        if let Some((s, &v)) = self
            .initial
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(MdpError::Initial {
                reason: "has a negative or non-finite entry",
                state: s,
                value: v,
            });
        }
        let sum: f64 = self.initial.iter().sum();
        if (sum - 1.0).abs() > SUM_TOLERANCE {
            return Err(MdpError::Initial {
                reason: "does not sum to 1",
                state: ns,
                value: sum,
            });
        }
        Ok(())
    }

    /// `P(s' | s, a)`.
    #[inline]
    pub fn p(&self, s: usize, a: usize, next: usize) -> f64 {
        self.transitions[(s * self.n_actions + a) * self.n_states + next]
    }

    /// The row `P(· | s, a)`.
    #[inline]
    pub fn next_state_distribution(&self, s: usize, a: usize) -> &[f64] {
        let start = (s * self.n_actions + a) * self.n_states;
        &self.transitions[start..start + self.n_states]
    }

    /// `R(s, a)`.
    #[inline]
    pub fn reward(&self, s: usize, a: usize) -> f64 {
        self.rewards[s * self.n_actions + a]
    }

    /// Parse and validate the JSON form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `Q(s, a) = R(s, a) + gamma * sum_s' P(s'|s,a) V(s')`, flat `[s][a]`.
    pub fn q_from_v(&self, v: &[f64]) -> Vec<f64> {
        let mut q = vec![0.0; self.n_states * self.n_actions];
        for s in 0..self.n_states {
            for a in 0..self.n_actions {
                let ev: f64 = self
                    .next_state_distribution(s, a)
                    .iter()
                    .zip(v)
                    .map(|(p, x)| p * x)
                    .sum();
                q[s * self.n_actions + a] = self.reward(s, a) + self.gamma * ev;
            }
        }
        q
    }

    /// Value iteration until the sup-norm change is below `tol` (or
    /// `max_iters`); returns the optimal values and a greedy policy.
    pub fn value_iteration(&self, tol: f64, max_iters: usize) -> (Vec<f64>, Vec<usize>) {
        let mut v = vec![0.0; self.n_states];
        for _ in 0..max_iters {
            let q = self.q_from_v(&v);
            let mut delta: f64 = 0.0;
            for s in 0..self.n_states {
                let best = q[s * self.n_actions..(s + 1) * self.n_actions]
                    .iter()
                    .cloned()
                    .fold(f64::NEG_INFINITY, f64::max);
                delta = delta.max((best - v[s]).abs());
                v[s] = best;
            }
            if delta < tol {
                break;
            }
        }
        let q = self.q_from_v(&v);
        let policy = (0..self.n_states)
            .map(|s| {
                let row = &q[s * self.n_actions..(s + 1) * self.n_actions];
                (0..self.n_actions).fold(
                    0,
                    |best, a| if row[a] > row[best] + 1e-12 { a } else { best },
                )
            })
            .collect();
        (v, policy)
    }

    /// Exact values of a deterministic policy: solves `(I - gamma P_pi) V = R_pi`
    /// by Gaussian elimination with partial pivoting (requires `gamma < 1`).
    pub fn policy_evaluation(&self, policy: &[usize]) -> Vec<f64> {
        let n = self.n_states;
        let mut m = vec![0.0; n * (n + 1)];
        for s in 0..n {
            let a = policy[s].min(self.n_actions - 1);
            for (sp, p) in self.next_state_distribution(s, a).iter().enumerate() {
                m[s * (n + 1) + sp] = -self.gamma * p;
            }
            m[s * (n + 1) + s] += 1.0;
            m[s * (n + 1) + n] = self.reward(s, a);
        }
        for c in 0..n {
            let piv = (c..n)
                .max_by(|&i, &j| {
                    m[i * (n + 1) + c]
                        .abs()
                        .total_cmp(&m[j * (n + 1) + c].abs())
                })
                .unwrap_or(c);
            for k in 0..=n {
                m.swap(c * (n + 1) + k, piv * (n + 1) + k);
            }
            let d = m[c * (n + 1) + c];
            if d == 0.0 {
                continue;
            }
            for r in 0..n {
                if r != c {
                    let f = m[r * (n + 1) + c] / d;
                    if f != 0.0 {
                        for k in c..=n {
                            m[r * (n + 1) + k] -= f * m[c * (n + 1) + k];
                        }
                    }
                }
            }
        }
        (0..n)
            .map(|s| m[s * (n + 1) + n] / m[s * (n + 1) + s])
            .collect()
    }
}

/// Deterministic gridworld with slip: actions 0 = up, 1 = right, 2 = down,
/// 3 = left; with probability `1 - slip` the intended move happens, otherwise
/// a uniformly random one of the four (so the intended move has total
/// probability `1 - slip + slip/4`). Moves into the border or a wall stay put.
/// The goal is absorbing; entering it pays `goal_reward`, every other step
/// `step_reward`. States are `y * width + x`; the start cell has all initial mass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GridWorldConfig {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Probability of a random move.
    pub slip: f64,
    /// Start cell `(x, y)`.
    pub start: (usize, usize),
    /// Goal cell `(x, y)`.
    pub goal: (usize, usize),
    /// Blocked cells `(x, y)`.
    pub walls: Vec<(usize, usize)>,
    /// Reward for entering the goal.
    pub goal_reward: f64,
    /// Reward of every other step.
    pub step_reward: f64,
    /// Discount.
    pub gamma: f64,
}

impl Default for GridWorldConfig {
    fn default() -> Self {
        Self {
            width: 5,
            height: 5,
            slip: 0.1,
            start: (0, 0),
            goal: (4, 4),
            walls: vec![],
            goal_reward: 1.0,
            step_reward: 0.0,
            gamma: 0.95,
        }
    }
}

fn gen_err(
    generator: &'static str,
    field: &'static str,
    value: impl ToString,
    reason: &'static str,
) -> MdpError {
    MdpError::Generator {
        generator,
        field,
        value: value.to_string(),
        reason,
    }
}

/// Build the gridworld MDP of `cfg`.
pub fn gridworld(cfg: &GridWorldConfig) -> Result<TabularMdp, MdpError> {
    let (w, h) = (cfg.width, cfg.height);
    if w == 0 || h == 0 {
        return Err(gen_err(
            "gridworld",
            "width",
            format!("{w}x{h}"),
            "the grid needs at least one cell",
        ));
    }
    if !(0.0..=1.0).contains(&cfg.slip) {
        return Err(gen_err("gridworld", "slip", cfg.slip, "must be in [0, 1]"));
    }
    for (name, (x, y)) in [("start", cfg.start), ("goal", cfg.goal)] {
        if x >= w || y >= h || cfg.walls.contains(&(x, y)) {
            return Err(gen_err(
                "gridworld",
                if name == "start" { "start" } else { "goal" },
                format!("({x}, {y})"),
                "must be a free cell inside the grid",
            ));
        }
    }
    let ns = w * h;
    let na = 4;
    let idx = |x: usize, y: usize| y * w + x;
    let goal = idx(cfg.goal.0, cfg.goal.1);
    let free = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && !cfg.walls.contains(&(x as usize, y as usize))
    };
    let moves: [(i64, i64); 4] = [(0, -1), (1, 0), (0, 1), (-1, 0)];
    let mut p = vec![0.0; ns * na * ns];
    let mut r = vec![0.0; ns * na];
    for y in 0..h {
        for x in 0..w {
            let s = idx(x, y);
            for a in 0..na {
                let row = &mut p[(s * na + a) * ns..(s * na + a + 1) * ns];
                if s == goal || cfg.walls.contains(&(x, y)) {
                    row[s] = 1.0;
                    continue;
                }
                for (m, &(dx, dy)) in moves.iter().enumerate() {
                    let prob = if m == a {
                        1.0 - cfg.slip + cfg.slip / 4.0
                    } else {
                        cfg.slip / 4.0
                    };
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    let next = if free(nx, ny) {
                        idx(nx as usize, ny as usize)
                    } else {
                        s
                    };
                    row[next] += prob;
                }
                let p_goal = row[goal];
                r[s * na + a] = p_goal * cfg.goal_reward + (1.0 - p_goal) * cfg.step_reward;
            }
        }
    }
    let mut mu = vec![0.0; ns];
    mu[idx(cfg.start.0, cfg.start.1)] = 1.0;
    TabularMdp::new(ns, na, cfg.gamma, p, r, mu)
}

/// RiverSwim (Strehl & Littman 2008) in the parameterization of Osband, Russo
/// & Van Roy (2013), "(More) efficient RL via posterior sampling", App. A:
/// `n` states in a chain, action 0 = swim left (always succeeds), action 1 =
/// swim right against the current: from the first state right w.p. 0.6 (stay
/// 0.4); in the middle right 0.35, stay 0.6, left 0.05; at the last state stay
/// 0.6, left 0.4. Rewards: `5/1000` for swimming left in the first state, `1`
/// for swimming right in the last. Start in the first state.
pub fn river_swim(n: usize, gamma: f64) -> Result<TabularMdp, MdpError> {
    if n < 2 {
        return Err(gen_err("river_swim", "n", n, "needs at least 2 states"));
    }
    let na = 2;
    let mut p = vec![0.0; n * na * n];
    let mut r = vec![0.0; n * na];
    let at = |s: usize, a: usize, sp: usize| (s * na + a) * n + sp;
    for s in 0..n {
        p[at(s, 0, s.saturating_sub(1))] = 1.0;
        if s == 0 {
            p[at(s, 1, 0)] = 0.4;
            p[at(s, 1, 1)] = 0.6;
        } else if s == n - 1 {
            p[at(s, 1, s)] = 0.6;
            p[at(s, 1, s - 1)] = 0.4;
        } else {
            p[at(s, 1, s + 1)] = 0.35;
            p[at(s, 1, s)] = 0.6;
            p[at(s, 1, s - 1)] = 0.05;
        }
    }
    r[0] = 5.0 / 1000.0;
    r[(n - 1) * na + 1] = 1.0;
    let mut mu = vec![0.0; n];
    mu[0] = 1.0;
    TabularMdp::new(n, na, gamma, p, r, mu)
}

/// Garnet (Archibald, McKinnon & Thomas 1995; Bhatnagar et al. 2009): for
/// each `(s, a)`, `branching` distinct next states drawn uniformly, their
/// probabilities the gaps between `branching - 1` sorted uniform cut points of
/// `[0, 1]`; rewards `R(s, a) ~ U(0, 1)`; uniform initial distribution.
pub fn garnet(
    n_states: usize,
    n_actions: usize,
    branching: usize,
    gamma: f64,
    seed: u64,
) -> Result<TabularMdp, MdpError> {
    if n_states == 0 || n_actions == 0 {
        return Err(MdpError::Empty {
            n_states,
            n_actions,
        });
    }
    if branching == 0 || branching > n_states {
        return Err(gen_err(
            "garnet",
            "branching",
            branching,
            "must be in 1..=n_states",
        ));
    }
    let mut rng = EnvRng::seed_from_u64(seed);
    let mut p = vec![0.0; n_states * n_actions * n_states];
    let mut r = vec![0.0; n_states * n_actions];
    let mut states: Vec<usize> = (0..n_states).collect();
    for s in 0..n_states {
        for a in 0..n_actions {
            // partial Fisher–Yates: the first `branching` entries are a uniform subset
            for i in 0..branching {
                let j = rng.random_range(i..n_states);
                states.swap(i, j);
            }
            let mut cuts: Vec<f64> = (0..branching - 1).map(|_| rng.random::<f64>()).collect();
            cuts.sort_by(f64::total_cmp);
            let row = &mut p[(s * n_actions + a) * n_states..(s * n_actions + a + 1) * n_states];
            let mut prev = 0.0;
            for (k, &sp) in states[..branching].iter().enumerate() {
                let c = if k + 1 < branching { cuts[k] } else { 1.0 };
                row[sp] += c - prev;
                prev = c;
            }
            r[s * n_actions + a] = rng.random::<f64>();
        }
    }
    let mu = vec![1.0 / n_states as f64; n_states];
    // The uniform initial distribution sums to 1 only up to rounding; renormalize the last entry.
    let mut mdp = TabularMdp {
        n_states,
        n_actions,
        gamma,
        transitions: p,
        rewards: r,
        initial: mu,
    };
    let s: f64 = mdp.initial[..n_states - 1].iter().sum();
    mdp.initial[n_states - 1] = 1.0 - s;
    mdp.validate()?;
    Ok(mdp)
}

/// A tabular MDP as an environment: observation `Discrete(n_states)` (written
/// as one real, the state index), action `Discrete(n_actions)`; `reset` draws
/// from `initial`, `step` draws `s' ~ P(·|s, a)` and pays `R(s, a)`. States in
/// `terminal` end the episode when entered.
#[derive(Debug, Clone)]
pub struct TabularEnv {
    id: String,
    mdp: TabularMdp,
    terminal: Vec<bool>,
    state: usize,
    rng: EnvRng,
    phase: Phase,
    obs_space: Space,
    act_space: Space,
}

impl TabularEnv {
    /// Wrap a (validated) MDP with no terminal states.
    pub fn new(id: impl Into<String>, mdp: TabularMdp) -> Result<Self, EnvError> {
        let id = id.into();
        mdp.validate()
            .map_err(|e| EnvError::param(&id, "mdp", "…", &e.to_string()))?;
        let ns = mdp.n_states;
        Ok(Self {
            obs_space: Space::discrete(ns as u64),
            act_space: Space::discrete(mdp.n_actions as u64),
            terminal: vec![false; ns],
            id,
            mdp,
            state: 0,
            rng: env_rng(None),
            phase: Phase::NotStarted,
        })
    }

    /// Mark states whose entry terminates the episode.
    pub fn with_terminal_states(mut self, states: &[usize]) -> Result<Self, EnvError> {
        for &s in states {
            if s >= self.mdp.n_states {
                return Err(EnvError::param(
                    &self.id,
                    "terminal",
                    s,
                    "state index out of range",
                ));
            }
            self.terminal[s] = true;
        }
        Ok(self)
    }

    /// The MDP.
    pub fn mdp(&self) -> &TabularMdp {
        &self.mdp
    }

    fn sample<R: Rng>(rng: &mut R, dist: &[f64]) -> usize {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for (i, p) in dist.iter().enumerate() {
            acc += p;
            if u < acc {
                return i;
            }
        }
        // rounding: fall back to the last state with positive mass
        dist.iter().rposition(|&p| p > 0.0).unwrap_or(0)
    }
}

impl Env for TabularEnv {
    fn id(&self) -> &str {
        &self.id
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        check_obs_len(&self.id, 1, obs)?;
        if seed.is_some() {
            self.rng = env_rng(seed);
        }
        self.state = Self::sample(&mut self.rng, &self.mdp.initial);
        self.phase = Phase::Running;
        obs[0] = self.state as f64;
        Ok(Info::new())
    }

    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        check_obs_len(&self.id, 1, obs)?;
        let a = discrete_index(&self.id, action, self.mdp.n_actions)?;
        self.phase.ensure_running(&self.id)?;
        let reward = self.mdp.reward(self.state, a);
        let s = self.state;
        self.state = Self::sample(&mut self.rng, self.mdp.next_state_distribution(s, a));
        let terminated = self.terminal[self.state];
        if terminated {
            self.phase = Phase::Ended;
        }
        obs[0] = self.state as f64;
        Ok(Transition {
            reward,
            terminated,
            truncated: false,
            info: Info::new(),
        })
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.mdp).unwrap_or(serde_json::Value::Null)
    }

    /// Replace the MDP (same numbers of states and actions) from its JSON form.
    fn set_params(&mut self, params: &serde_json::Value) -> Result<(), EnvError> {
        let mdp: TabularMdp =
            serde_json::from_value(params.clone()).map_err(|e| EnvError::ParamsJson {
                env: self.id.clone(),
                reason: e.to_string(),
            })?;
        if mdp.n_states != self.mdp.n_states || mdp.n_actions != self.mdp.n_actions {
            return Err(EnvError::param(
                &self.id,
                "n_states/n_actions",
                format!("{}/{}", mdp.n_states, mdp.n_actions),
                "must keep the spaces",
            ));
        }
        self.mdp = mdp;
        Ok(())
    }

    fn state(&self) -> Option<Vec<f64>> {
        Some(vec![self.state as f64])
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        crate::env::check_state_len(&self.id, "state", 1, state)?;
        let s = state[0];
        if s < 0.0 || s.fract() != 0.0 || s >= self.mdp.n_states as f64 {
            return Err(EnvError::InvalidState {
                env: self.id.clone(),
                index: 0,
                name: "state",
                value: s,
                reason: "not a state index",
            });
        }
        self.state = s as usize;
        self.phase = Phase::Running;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        check_obs_len(&self.id, 1, obs)?;
        obs[0] = self.state as f64;
        Ok(())
    }
}

/// JSON parameters of the registered tabular ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct GarnetParams {
    pub n_states: usize,
    pub n_actions: usize,
    pub branching: usize,
    pub gamma: f64,
    pub seed: u64,
}

impl Default for GarnetParams {
    fn default() -> Self {
        Self {
            n_states: 50,
            n_actions: 4,
            branching: 5,
            gamma: 0.95,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RiverSwimParams {
    pub n: usize,
    pub gamma: f64,
}

impl Default for RiverSwimParams {
    fn default() -> Self {
        Self { n: 6, gamma: 0.95 }
    }
}

pub(crate) fn make_garnet(params: &serde_json::Value) -> Result<TabularEnv, EnvError> {
    let p: GarnetParams = crate::env::parse_params("Garnet-v0", params)?;
    let mdp = garnet(p.n_states, p.n_actions, p.branching, p.gamma, p.seed)
        .map_err(|e| EnvError::param("Garnet-v0", "params", params, &e.to_string()))?;
    TabularEnv::new("Garnet-v0", mdp)
}

pub(crate) fn make_river_swim(params: &serde_json::Value) -> Result<TabularEnv, EnvError> {
    let p: RiverSwimParams = crate::env::parse_params("RiverSwim-v0", params)?;
    let mdp = river_swim(p.n, p.gamma)
        .map_err(|e| EnvError::param("RiverSwim-v0", "n", p.n, &e.to_string()))?;
    TabularEnv::new("RiverSwim-v0", mdp)
}

pub(crate) fn make_gridworld(params: &serde_json::Value) -> Result<TabularEnv, EnvError> {
    let cfg: GridWorldConfig = crate::env::parse_params("GridWorld-v0", params)?;
    let mdp = gridworld(&cfg)
        .map_err(|e| EnvError::param("GridWorld-v0", "params", params, &e.to_string()))?;
    let goal = cfg.goal.1 * cfg.width + cfg.goal.0;
    TabularEnv::new("GridWorld-v0", mdp)?.with_terminal_states(&[goal])
}
