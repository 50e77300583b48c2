//! The fishery models of Montealegre-Mora, Lapeyrolerie, Chapman, Keller &
//! Boettiger, "Pretty darn good control: when are approximate solutions better
//! than approximate models" (arXiv 2308.13654, 2023), and the two classical
//! policy families it compares against, with grid search.
//!
//! Dynamics (manuscript `eq:may` and `eq:3d model`; harvest first, then one
//! year of simultaneous growth from the post-harvest populations):
//!
//! ```text
//! L(x; r, K) = r x (1 - x/K)          F(x, H; β, c) = β H x² / (c² + x²)
//! Model 1:   ΔX = L(X; r, K) − F(X, H; β, c) + noise            (βH = "betaZ")
//! Models 2–4:
//!   ΔX = L(X; r_X(t), K_X) − F(X, Z; β, c) − c_XY X Y + noise
//!   ΔY = L(Y; r_Y, K_Y) − D F(Y, Z; β, c) − c_XY X Y + noise
//!   ΔZ = α [ (b (X + D Y) − d_Z) Z + noise ]
//! Model 4:   r_X(t) = r_X max(1 − t/200, 1/2)                   (eq:rx(t))
//! ```
//!
//! The defaults are the parameters of the code that produced the paper's
//! numbers (`src/parameters.py`, `src/envs/growth_functions.py`), not the
//! manuscript text; the two disagree on the noise (code: multiplicative
//! `σ X ξ` with σ = 0.1; text: additive with variance 0.05) and on Model 1's
//! constants. Both noise variants are selectable ([`FisheryNoise`]).
//!
//! MDP: action = fishing mortality per harvested species, clipped to `[0, 1]`
//! like the code; reward = harvested biomass `M_X X (+ M_Y Y)`; observation =
//! populations / 4 (the code's normalization, not clipped); the episode
//! terminates when any population is `≤ 0.05` after growth, and that step's
//! reward gets `−100 / (t + 1)` (t = 0-based step). The registered ids add a
//! 200-step `TimeLimit` (truncation, so value bootstrapping stays right; the
//! paper's RLlib training ran without one — use `make_with(.., false)`).

use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::env::{
    Action, Env, EnvRng, Info, Phase, Transition, check_obs_len, check_state_len, env_rng,
    parse_params,
};
use crate::error::EnvError;
use crate::space::{BoxSpace, Space, finite_continuous};

/// Noise variant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FisheryNoise {
    /// Code as run (default): `+ σ X ξ`, ξ ~ N(0, 1), per species (inside α for Z).
    Multiplicative,
    /// Manuscript text: `+ η`, η ~ N(0, σ²) per species.
    Additive,
    /// Deterministic dynamics.
    None,
}

/// Model constants; defaults are the code-as-run values for the chosen `model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FisheryParams {
    /// 1 (May 1977 single species), 2 (three species, X harvested),
    /// 3 (X and Y harvested), 4 (as 3 with the r_X(t) drift).
    pub model: u8,
    /// Noise variant (default: the code's multiplicative noise).
    pub noise: FisheryNoise,
    /// Noise scale: std of ξ-multiplier (multiplicative, 0.1) or std of η
    /// (additive; the text's variance 0.05 is σ = 0.2236).
    pub sigma: f64,
    /// Model 1: growth rate r.
    pub r: f64,
    /// Model 1: carrying capacity K.
    pub k: f64,
    /// Model 1: predation strength βH ("betaZ", code 0.1; text β = 0.25 with H unstated).
    pub beta_h: f64,
    /// Model 1: half-saturation c ("v0", code 0.3; text 0.1).
    pub c1: f64,
    /// Models 2–4: r_X.
    pub r_x: f64,
    /// Models 2–4: K_X.
    pub k_x: f64,
    /// Models 2–4: r_Y.
    pub r_y: f64,
    /// Models 2–4: K_Y.
    pub k_y: f64,
    /// Models 2–4: predation β.
    pub beta: f64,
    /// Models 2–4: half-saturation c ("v0").
    pub c: f64,
    /// Models 2–4: competition c_XY ("cV").
    pub c_xy: f64,
    /// Models 2–4: predator conversion b ("f").
    pub b: f64,
    /// Models 2–4: predation preference D.
    pub d: f64,
    /// Models 2–4: predator death rate d_Z ("dH").
    pub d_z: f64,
    /// Models 2–4: α multiplying the whole Z increment.
    pub alpha: f64,
    /// Initial populations (1 or 3 entries).
    pub initial: Vec<f64>,
    /// Std of the Gaussian noise added to the initial populations (0.02 = 0.005 on the normalized state).
    pub initial_noise: f64,
    /// Near-extinction threshold (population units).
    pub threshold: f64,
    /// Penalty numerator: the terminating step's reward gets `−penalty / (t + 1)`.
    pub penalty: f64,
    /// Observation = population / `obs_scale`.
    pub obs_scale: f64,
}

impl Default for FisheryParams {
    fn default() -> Self {
        Self::model(3)
    }
}

impl FisheryParams {
    /// Code-as-run defaults for model `m` (1..=4).
    pub fn model(m: u8) -> Self {
        Self {
            model: m,
            noise: FisheryNoise::Multiplicative,
            sigma: 0.1,
            r: 1.0,
            k: 1.0,
            beta_h: 0.1,
            c1: 0.3,
            r_x: 1.0,
            k_x: 1.0,
            r_y: 1.0,
            k_y: 1.0,
            beta: 0.3,
            c: 0.3,
            c_xy: 0.1,
            b: 0.1,
            d: 1.1,
            d_z: 0.1,
            alpha: 1.0,
            initial: if m == 1 {
                vec![0.7]
            } else {
                vec![0.5, 0.5, 0.7]
            },
            initial_noise: 0.02,
            threshold: 0.05,
            penalty: 100.0,
            obs_scale: 4.0,
        }
    }

    /// The manuscript-text variant of model `m`: additive noise with variance
    /// 0.05, Model 1 with β = 0.25 (H = 1) and c = 0.1.
    pub fn manuscript(m: u8) -> Self {
        let mut p = Self::model(m);
        p.noise = FisheryNoise::Additive;
        p.sigma = 0.05_f64.sqrt();
        if m == 1 {
            p.beta_h = 0.25;
            p.c1 = 0.1;
        }
        p
    }

    /// Number of species in the state (1 or 3).
    pub fn n_species(&self) -> usize {
        if self.model == 1 { 1 } else { 3 }
    }

    /// Number of harvested species (the action dimension).
    pub fn n_fisheries(&self) -> usize {
        if self.model >= 3 { 2 } else { 1 }
    }

    fn validate(&self, env: &str) -> Result<(), EnvError> {
        if !(1..=4).contains(&self.model) {
            return Err(EnvError::param(
                env,
                "model",
                self.model,
                "must be 1, 2, 3 or 4",
            ));
        }
        if self.initial.len() != self.n_species() {
            return Err(EnvError::param(
                env,
                "initial",
                format!("{:?}", self.initial),
                "needs one entry per species (1 for model 1, 3 otherwise)",
            ));
        }
        for (name, v) in [
            ("sigma", self.sigma),
            ("initial_noise", self.initial_noise),
            ("threshold", self.threshold),
            ("obs_scale", self.obs_scale),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(EnvError::param(
                    env,
                    name,
                    v,
                    "must be a non-negative finite number",
                ));
            }
        }
        if self.obs_scale == 0.0 {
            return Err(EnvError::param(env, "obs_scale", 0.0, "must be positive"));
        }
        for (name, v) in [("k", self.k), ("k_x", self.k_x), ("k_y", self.k_y)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(EnvError::param(
                    env,
                    name,
                    v,
                    "carrying capacity must be positive",
                ));
            }
        }
        Ok(())
    }
}

/// Logistic growth `L(x; r, K) = r x (1 − x/K)`.
#[inline]
pub fn logistic(x: f64, r: f64, k: f64) -> f64 {
    r * x * (1.0 - x / k)
}

/// Holling type III predation `F(x, H; β, c) = β H x² / (c² + x²)`.
#[inline]
pub fn holling3(x: f64, h: f64, beta: f64, c: f64) -> f64 {
    beta * h * x * x / (c * c + x * x)
}

/// Model 4's climate drift `r_X(t) = r_X max(1 − 0.5 t / 100, 1/2)` (eq:rx(t)).
#[inline]
pub fn r_x_drift(r_x: f64, t: usize) -> f64 {
    r_x * (1.0 - 0.5 * t as f64 / 100.0).max(0.5)
}

/// The fishery environment.
#[derive(Debug, Clone)]
pub struct Fishery {
    id: String,
    params: FisheryParams,
    pop: [f64; 3],
    t: usize,
    rng: EnvRng,
    phase: Phase,
    obs_space: Space,
    act_space: Space,
}

impl Fishery {
    /// Build model `params.model` under the id `Fishery{model}-v0`.
    pub fn new(params: FisheryParams) -> Result<Self, EnvError> {
        let id = format!("Fishery{}-v0", params.model);
        params.validate(&id)?;
        let (o, a) = (params.n_species(), params.n_fisheries());
        Ok(Self {
            id,
            obs_space: Space::Box(BoxSpace::uniform(f64::NEG_INFINITY, f64::INFINITY, o)?),
            act_space: Space::Box(BoxSpace::uniform(0.0, 1.0, a)?),
            params,
            pop: [0.0; 3],
            t: 0,
            rng: env_rng(None),
            phase: Phase::NotStarted,
        })
    }

    /// Build from JSON over the code-as-run defaults of `model` (the JSON may override `model` too).
    pub fn from_json(model: u8, params: &serde_json::Value) -> Result<Self, EnvError> {
        let base = FisheryParams::model(model);
        let mut v = serde_json::to_value(&base).map_err(|e| EnvError::ParamsJson {
            env: format!("Fishery{model}-v0"),
            reason: e.to_string(),
        })?;
        if let (Some(b), Some(p)) = (v.as_object_mut(), params.as_object()) {
            for (k, x) in p {
                b.insert(k.clone(), x.clone());
            }
        } else if !params.is_null() {
            return Err(EnvError::ParamsJson {
                env: format!("Fishery{model}-v0"),
                reason: format!("expected a JSON object, got {params}"),
            });
        }
        let p: FisheryParams = parse_params(&format!("Fishery{model}-v0"), &v)?;
        Self::new(p)
    }

    /// The parameters.
    pub fn model_params(&self) -> &FisheryParams {
        &self.params
    }

    /// Populations (population units; 1 or 3 entries).
    pub fn populations(&self) -> &[f64] {
        &self.pop[..self.params.n_species()]
    }

    /// Current 0-based step counter.
    pub fn time(&self) -> usize {
        self.t
    }

    fn noise(&mut self, x: f64) -> f64 {
        match self.params.noise {
            FisheryNoise::None => 0.0,
            FisheryNoise::Multiplicative => {
                let xi: f64 = StandardNormal.sample(&mut self.rng);
                self.params.sigma * x * xi
            }
            FisheryNoise::Additive => {
                let xi: f64 = StandardNormal.sample(&mut self.rng);
                self.params.sigma * xi
            }
        }
    }

    /// One year of natural dynamics from post-harvest populations at step `t`.
    fn grow(&mut self, pop: [f64; 3], t: usize) -> [f64; 3] {
        // draw the noise first (X, then Y, then Z), then read the parameters
        if self.params.model == 1 {
            let x = pop[0];
            let nx = self.noise(x);
            let p = &self.params;
            let dx = logistic(x, p.r, p.k) - holling3(x, 1.0, p.beta_h, p.c1) + nx;
            return [x + dx, 0.0, 0.0];
        }
        let [x, y, z] = pop;
        let (nx, ny, nz) = (self.noise(x), self.noise(y), self.noise(z));
        let p = &self.params;
        let r_x = if p.model == 4 {
            r_x_drift(p.r_x, t)
        } else {
            p.r_x
        };
        let dx = logistic(x, r_x, p.k_x) - holling3(x, z, p.beta, p.c) - p.c_xy * x * y + nx;
        let dy =
            logistic(y, p.r_y, p.k_y) - p.d * holling3(y, z, p.beta, p.c) - p.c_xy * x * y + ny;
        let dz = p.alpha * ((p.b * (x + p.d * y) - p.d_z) * z + nz);
        [x + dx, y + dy, z + dz]
    }

    fn write_obs(&self, obs: &mut [f64]) {
        for (o, x) in obs.iter_mut().zip(&self.pop) {
            *o = x / self.params.obs_scale;
        }
    }

    /// Step with mortalities in population units (clipped to `[0, 1]`); the
    /// allocation-free core used by [`Env::step_into`] and the policy grid search.
    pub fn step_mortality(&mut self, mortality: &[f64]) -> Result<(f64, bool), EnvError> {
        self.phase.ensure_running(&self.id)?;
        let n = self.params.n_species();
        let mut pop = self.pop;
        let mut reward = 0.0;
        for (i, &m) in mortality.iter().enumerate().take(self.params.n_fisheries()) {
            let m = m.clamp(0.0, 1.0);
            let h = m * pop[i];
            reward += h;
            pop[i] = (pop[i] - h).max(0.0);
        }
        let t = self.t;
        self.pop = self.grow(pop, t);
        self.t += 1;
        let terminated = self.pop[..n].iter().any(|&x| x <= self.params.threshold);
        if terminated {
            reward -= self.params.penalty / (t as f64 + 1.0);
            self.phase = Phase::Ended;
        }
        Ok((reward, terminated))
    }
}

impl Env for Fishery {
    fn id(&self) -> &str {
        &self.id
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    /// Initial populations plus N(0, initial_noise²) noise.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        check_obs_len(&self.id, self.params.n_species(), obs)?;
        if seed.is_some() {
            self.rng = env_rng(seed);
        }
        for (i, &x0) in self.params.initial.iter().enumerate() {
            let e: f64 = StandardNormal.sample(&mut self.rng);
            self.pop[i] = x0 + self.params.initial_noise * e;
        }
        self.t = 0;
        self.phase = Phase::Running;
        self.write_obs(obs);
        Ok(Info::new())
    }

    /// Finite actions outside `[0, 1]` are clipped, as in the paper's code.
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        check_obs_len(&self.id, self.params.n_species(), obs)?;
        let a = finite_continuous(&self.id, action, self.params.n_fisheries())?;
        let mut m = [0.0; 2];
        m[..a.len()].copy_from_slice(a);
        let (reward, terminated) = self.step_mortality(&m[..a.len()])?;
        self.write_obs(obs);
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
        let fresh = Fishery::from_json(self.params.model, params)?;
        if fresh.params.model != self.params.model {
            return Err(EnvError::param(
                &self.id,
                "model",
                fresh.params.model,
                "cannot change the model of an existing environment",
            ));
        }
        self.params = fresh.params;
        Ok(())
    }

    /// Populations in population units (not the /4 observation).
    fn state(&self) -> Option<Vec<f64>> {
        Some(self.populations().to_vec())
    }

    /// Set the populations; the step counter restarts at 0.
    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        let names = if self.params.model == 1 {
            "X"
        } else {
            "X, Y, Z"
        };
        check_state_len(&self.id, names, self.params.n_species(), state)?;
        if let Some((i, &v)) = state.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(EnvError::InvalidState {
                env: self.id.clone(),
                index: i,
                name: ["X", "Y", "Z"][i],
                value: v,
                reason: "population must be non-negative",
            });
        }
        self.pop[..state.len()].copy_from_slice(state);
        self.t = 0;
        self.phase = Phase::Running;
        Ok(())
    }

    fn observe(&self, obs: &mut [f64]) -> Result<(), EnvError> {
        check_obs_len(&self.id, self.params.n_species(), obs)?;
        self.write_obs(obs);
        Ok(())
    }
}

/// The paper's classical policy families (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyFamily {
    /// CMort: constant mortality `π(N) = M`.
    ConstantMortality,
    /// CEsc: constant escapement `M_i = max(0, 1 − S_i / X_i)` (S in population units).
    ConstantEscapement,
}

impl PolicyFamily {
    /// The mortality for populations `pop` (population units) and policy parameter `theta`
    /// (M for CMort, S for CEsc), one entry per fishery.
    pub fn mortality(self, theta: &[f64], pop: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = match self {
                PolicyFamily::ConstantMortality => theta[i],
                PolicyFamily::ConstantEscapement => constant_escapement(pop[i], theta[i]),
            };
        }
    }
}

/// CEsc mortality for one species: harvest down to `s` (`0` when `x <= s`).
#[inline]
pub fn constant_escapement(x: f64, s: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else {
        (1.0 - s / x).max(0.0)
    }
}

/// Evaluation of one policy parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyScore {
    /// Policy parameter (M or S per fishery).
    pub theta: Vec<f64>,
    /// Mean undiscounted episode reward (after `burn_in`), including penalties.
    pub mean_reward: f64,
    /// Standard deviation of the episode rewards.
    pub std_reward: f64,
    /// Fraction of episodes that reached the horizon without near-extinction.
    pub survival: f64,
}

/// Grid-search settings (§3: 101 points on [0, 0.5] for CMort / [0, 1] for
/// CEsc with one fishery, 51×51 with two; 100 episodes of 200 steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSearch {
    /// Policy family.
    pub family: PolicyFamily,
    /// Grid values per fishery dimension.
    pub values: Vec<f64>,
    /// Episodes per grid point (seeds `seed..seed + episodes`, shared by all points).
    pub episodes: usize,
    /// Steps per episode.
    pub horizon: usize,
    /// Steps whose reward is not counted (steady-state tests).
    pub burn_in: usize,
    /// First seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

impl GridSearch {
    /// The paper's grid for `family` with `n_points` values per dimension.
    pub fn paper(family: PolicyFamily, n_points: usize) -> Self {
        let hi = match family {
            PolicyFamily::ConstantMortality => 0.5,
            PolicyFamily::ConstantEscapement => 1.0,
        };
        let n = n_points.max(2);
        Self {
            family,
            values: (0..n).map(|i| hi * i as f64 / (n - 1) as f64).collect(),
            episodes: 100,
            horizon: 200,
            burn_in: 0,
            seed: 0,
            threads: 1,
        }
    }

    /// Evaluate one parameter.
    pub fn evaluate(&self, params: &FisheryParams, theta: &[f64]) -> Result<PolicyScore, EnvError> {
        let mut env = Fishery::new(params.clone())?;
        let nf = params.n_fisheries();
        let mut obs = vec![0.0; params.n_species()];
        let mut m = vec![0.0; nf];
        let mut totals = Vec::with_capacity(self.episodes);
        let mut survived = 0usize;
        for e in 0..self.episodes {
            env.reset_into(Some(self.seed + e as u64), &mut obs)?;
            let mut total = 0.0;
            let mut alive = true;
            for t in 0..self.horizon {
                self.family.mortality(theta, env.populations(), &mut m);
                let (r, term) = env.step_mortality(&m)?;
                if t >= self.burn_in {
                    total += r;
                }
                if term {
                    alive = false;
                    break;
                }
            }
            survived += usize::from(alive);
            totals.push(total);
        }
        let n = totals.len().max(1) as f64;
        let mean = totals.iter().sum::<f64>() / n;
        let var = totals.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Ok(PolicyScore {
            theta: theta.to_vec(),
            mean_reward: mean,
            std_reward: var.sqrt(),
            survival: survived as f64 / n,
        })
    }

    /// Evaluate every grid point (the Cartesian product over fisheries) and
    /// return all scores, best first (ties: the earlier grid point).
    pub fn run(&self, params: &FisheryParams) -> Result<Vec<PolicyScore>, EnvError> {
        let nf = params.n_fisheries();
        let k = self.values.len();
        let points: Vec<Vec<f64>> = (0..k.pow(nf as u32))
            .map(|mut i| {
                (0..nf)
                    .map(|_| {
                        let v = self.values[i % k];
                        i /= k;
                        v
                    })
                    .collect()
            })
            .collect();
        let threads = self.threads.max(1);
        let chunk = points.len().div_ceil(threads).max(1);
        let results: Vec<Result<Vec<PolicyScore>, EnvError>> = std::thread::scope(|s| {
            let hs: Vec<_> = points
                .chunks(chunk)
                .map(|c| {
                    s.spawn(move || {
                        c.iter()
                            .map(|th| self.evaluate(params, th))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EnvError::Unsupported {
                            env: "grid search".into(),
                            what: "a panicking worker",
                        })
                    })
                })
                .collect()
        });
        let mut all = Vec::with_capacity(points.len());
        for r in results {
            all.extend(r?);
        }
        all.sort_by(|a, b| b.mean_reward.total_cmp(&a.mean_reward));
        Ok(all)
    }
}
