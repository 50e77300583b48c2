//! `TaxEconomy`: the tax-design Stackelberg game of Karten et al., "LLM
//! Economist" (arXiv 2507.15815, 2025), with rational or learning workers in
//! place of LLM personas (model as in the paper-era code, `llm_economist/`).
//!
//! * Workers `i = 1..N` have skills `v_i` (income per weekly hour): `v = I / 40`
//!   with `I` drawn from the paper's GB2 fit to ACS 2023 incomes
//!   (`mu = 72402.78, sigma = 2.0721, nu = 0.48652, tau = 1.14104`) by inverse
//!   CDF, or uniform on `[1.24, 159.1]`.
//! * A worker choosing hours `l ∈ [0, 100]` earns `z = v l`, pays `T(z)` under a
//!   piecewise-linear marginal schedule (brackets `three` = `[0, 90000, 159100, 1e7]`
//!   or the 2024 US federal ones), receives the equal rebate `R = Σ_j T(z_j) / N`,
//!   and gets utility `u = z − T(z) + R − c l^δ`.
//! * The planner (the agent) acts once per tax year (25 worker steps): a
//!   change `Δ_j ∈ {−20, −10, 0, +10, +20}` percentage points per bracket
//!   (`MultiDiscrete([5; B])`, index `k` ↦ `Δ = 10 (k − 2)`), rates clamped to
//!   `[0, 100]` as the planner's parser does; reward = the year's mean social
//!   welfare `SWF = Σ_i u_i / max(z_i, 1)` (a sum, as implemented).
//! * Workers: **rational** (exact best response to the schedule, rebate taken
//!   as exogenous — the large-N approximation) or **learning** (ε-greedy over
//!   the 11 levels `{0, 10, ..., 100}` with running mean utility per level,
//!   mirroring the code's `labor_avg_util`).
//!
//! **Elasticity.** With the paper's `c = 0.0005, δ = 3.5` and GB2 skills the
//! interior optimum exceeds the 100-hour cap unless `(1 − τ) v < 175`, i.e.
//! for ~90 % of workers labour is pinned at the cap and almost inelastic, so
//! any planner finds high rates free. The default here keeps `δ = 3.5` and sets
//! `c = 0.0269`, which puts the median GB2 worker (v ≈ 952 $/h) at 40 h/week
//! under zero tax; [`TaxParams::paper`] restores `c = 0.0005`.

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::env::{Action, Env, EnvRng, Info, Phase, Transition, check_obs_len, parse_params};
use crate::error::EnvError;
use crate::space::{BoxSpace, Space};

const ID: &str = "TaxEconomy-v0";

/// Skill distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SkillDistribution {
    /// GB2 annual incomes (the paper's `us_income`), skill = income / 40.
    Gb2 {
        /// Scale.
        mu: f64,
        /// Shape a.
        sigma: f64,
        /// Shape p.
        nu: f64,
        /// Shape q.
        tau: f64,
    },
    /// `v ~ U(low, high)` (the paper's `uniform`).
    Uniform {
        /// Lower skill.
        low: f64,
        /// Upper skill.
        high: f64,
    },
}

impl SkillDistribution {
    /// The paper's GB2 fit to ACS 2023 US incomes.
    pub fn us_income() -> Self {
        SkillDistribution::Gb2 {
            mu: 72402.78,
            sigma: 2.0721,
            nu: 0.48652,
            tau: 1.14104,
        }
    }
}

/// Worker behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerModel {
    /// Exact best response to the current schedule.
    Rational,
    /// ε-greedy bandit over 11 labour levels.
    Learning,
}

/// Parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaxParams {
    /// Number of workers.
    pub n_workers: usize,
    /// Skill distribution.
    pub skills: SkillDistribution,
    /// Seed of the skill draw (fixed population across episodes).
    pub population_seed: u64,
    /// Bracket edges (annual income), first 0, last the top cap.
    pub brackets: Vec<f64>,
    /// Initial marginal rates in percent, one per bracket.
    pub initial_rates: Vec<f64>,
    /// Labour disutility scale `c` (paper 0.0005; default 0.0269, see the module docs).
    pub c: f64,
    /// Labour disutility exponent `δ` (paper 3.5).
    pub delta: f64,
    /// Hour cap per week.
    pub max_hours: f64,
    /// Worker steps per tax year.
    pub tax_year_steps: usize,
    /// Worker model.
    pub workers: WorkerModel,
    /// Exploration rate of learning workers.
    pub epsilon: f64,
}

impl Default for TaxParams {
    fn default() -> Self {
        Self {
            n_workers: 100,
            skills: SkillDistribution::us_income(),
            population_seed: 42,
            brackets: THREE_BRACKETS.to_vec(),
            initial_rates: vec![50.0; 3],
            c: 0.0269,
            delta: 3.5,
            max_hours: 100.0,
            tax_year_steps: 25,
            workers: WorkerModel::Rational,
            epsilon: 0.1,
        }
    }
}

impl TaxParams {
    /// The paper's constants (`c = 0.0005`), mostly inelastic labour.
    pub fn paper() -> Self {
        Self {
            c: 0.0005,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), EnvError> {
        if self.n_workers == 0 {
            return Err(EnvError::param(
                ID,
                "n_workers",
                0,
                "needs at least one worker",
            ));
        }
        if self.brackets.len() < 2
            || self.brackets[0] != 0.0
            || self
                .brackets
                .windows(2)
                .any(|w| w[0] >= w[1] || !w[1].is_finite())
        {
            return Err(EnvError::param(
                ID,
                "brackets",
                format!("{:?}", self.brackets),
                "must start at 0 and increase strictly",
            ));
        }
        if self.initial_rates.len() != self.brackets.len() - 1 {
            return Err(EnvError::param(
                ID,
                "initial_rates",
                format!("{:?}", self.initial_rates),
                "needs one rate per bracket",
            ));
        }
        if let Some((i, r)) = self
            .initial_rates
            .iter()
            .enumerate()
            .find(|(_, r)| !(0.0..=100.0).contains(*r))
        {
            return Err(EnvError::param(
                ID,
                &format!("initial_rates[{i}]"),
                r,
                "must be a percentage in [0, 100]",
            ));
        }
        for (name, v) in [
            ("c", self.c),
            ("delta", self.delta),
            ("max_hours", self.max_hours),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(EnvError::param(ID, name, v, "must be positive"));
            }
        }
        if self.delta <= 1.0 {
            return Err(EnvError::param(
                ID,
                "delta",
                self.delta,
                "must exceed 1 (convex disutility)",
            ));
        }
        if self.tax_year_steps == 0 {
            return Err(EnvError::param(ID, "tax_year_steps", 0, "must be positive"));
        }
        Ok(())
    }
}

/// The `three` bracket edges.
pub const THREE_BRACKETS: [f64; 4] = [0.0, 90_000.0, 159_100.0, 1e7];
/// 2024 US federal single-filer edges (`US_FED`).
pub const US_FED_BRACKETS: [f64; 8] = [
    0.0, 11_600.0, 47_150.0, 100_525.0, 191_950.0, 243_725.0, 609_350.0, 1e7,
];
/// 2024 US federal rates (percent).
pub const US_FED_RATES: [f64; 7] = [10.0, 12.0, 22.0, 24.0, 32.0, 35.0, 37.0];

/// `T(z) = Σ_j τ_j/100 · [(b_{j+1} − b_j) 1{z > b_{j+1}} + (z − b_j) 1{b_j < z ≤ b_{j+1}}]`.
pub fn tax(z: f64, brackets: &[f64], rates_percent: &[f64]) -> f64 {
    let mut t = 0.0;
    for (j, r) in rates_percent.iter().enumerate() {
        let (lo, hi) = (brackets[j], brackets[j + 1]);
        if z > hi {
            t += r / 100.0 * (hi - lo);
        } else if z > lo {
            t += r / 100.0 * (z - lo);
        }
    }
    t
}

/// Exact best response `argmax_l v l − T(v l) − c l^δ` on `[0, max_hours]`
/// (rebate exogenous): the utility is concave on each bracket's segment, so
/// the optimum is the best of the per-segment clipped interior optima
/// `l = ((1 − τ_j) v / (c δ))^{1/(δ−1)}`.
pub fn best_response(
    v: f64,
    brackets: &[f64],
    rates_percent: &[f64],
    c: f64,
    delta: f64,
    max_hours: f64,
) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    let u = |l: f64| v * l - tax(v * l, brackets, rates_percent) - c * l.powf(delta);
    let mut best = (0.0, u(0.0));
    for (j, r) in rates_percent.iter().enumerate() {
        let lo = (brackets[j] / v).min(max_hours);
        let hi = (brackets[j + 1] / v).min(max_hours);
        if hi <= lo {
            continue;
        }
        let interior = ((1.0 - r / 100.0).max(0.0) * v / (c * delta)).powf(1.0 / (delta - 1.0));
        let l = interior.clamp(lo, hi);
        let val = u(l);
        if val > best.1 {
            best = (l, val);
        }
    }
    best.0
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta `I_x(a, b)` (continued fraction, modified Lentz).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..500 {
        let m = m as f64;
        // even and odd terms of the continued fraction
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            f *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    ln_front.exp() * f / a
}

/// GB2 quantile as the paper samples it: `I = mu ((nu/tau) w)^{1/sigma}` with
/// `w` the F(2 nu, 2 tau) quantile of `p`; via `y ~ Beta(nu, tau)`,
/// `(nu/tau) w = y / (1 − y)`. The Beta quantile is found by bisection.
pub fn gb2_quantile(p: f64, mu: f64, sigma: f64, nu: f64, tau: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if incomplete_beta(mid, nu, tau) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let y = 0.5 * (lo + hi);
    mu * (y / (1.0 - y)).powf(1.0 / sigma)
}

/// Saez's rate for one bracket (§2.4 as implemented): `τ = (1 − G) / (1 − G + a ε)`, clipped to `[0, 1]`.
pub fn saez_rate(g: f64, a: f64, elasticity: f64) -> f64 {
    ((1.0 - g) / (1.0 - g + a * elasticity)).clamp(0.0, 1.0)
}

/// Pareto-tail parameter `a = m / (m − threshold)`, `m` the mean income at or above `above`.
pub fn pareto_tail_a(incomes: &[f64], above: f64, threshold: f64) -> f64 {
    let tail: Vec<f64> = incomes.iter().cloned().filter(|&z| z >= above).collect();
    if tail.is_empty() {
        return 1.0;
    }
    let m = tail.iter().sum::<f64>() / tail.len() as f64;
    m / (m - threshold)
}

/// The Saez baseline (`saez_optimal_tax_rates` as implemented): per bracket a
/// representative income (midpoint; top bracket: start + 10 % of width),
/// inverse-income welfare weights, empirical CDF, Gaussian-KDE density
/// (Scott's bandwidth), `G(z) = Σ_{z_i ≥ z} ω_i / (1 − F(z))`,
/// `a(z) = z f(z) / (1 − F(z))` (top bracket: `m / (m − b_top)`). Returns percent.
pub fn saez_rates(incomes: &[f64], brackets: &[f64], elasticities: &[f64]) -> Vec<f64> {
    let n = incomes.len().max(1) as f64;
    let w: Vec<f64> = incomes.iter().map(|z| 1.0 / z.max(1.0)).collect();
    let wsum: f64 = w.iter().sum();
    let mean = incomes.iter().sum::<f64>() / n;
    let sd = (incomes.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let bw = (sd * n.powf(-0.2)).max(1e-9);
    let kde = |z: f64| {
        incomes
            .iter()
            .map(|zi| (-0.5 * ((z - zi) / bw).powi(2)).exp())
            .sum::<f64>()
            / (n * bw * (2.0 * std::f64::consts::PI).sqrt())
    };
    let nb = brackets.len() - 1;
    (0..nb)
        .map(|j| {
            let (lo, hi) = (brackets[j], brackets[j + 1]);
            let top = j == nb - 1;
            let z = if top {
                lo + 0.1 * (hi - lo)
            } else {
                0.5 * (lo + hi)
            };
            let f_cdf = incomes.iter().filter(|&&zi| zi <= z).count() as f64 / n;
            let surv = (1.0 - f_cdf).max(1e-12);
            let g = incomes
                .iter()
                .zip(&w)
                .filter(|(zi, _)| **zi >= z)
                .map(|(_, wi)| wi / wsum)
                .sum::<f64>()
                / surv;
            let a = if top {
                pareto_tail_a(incomes, z, lo)
            } else {
                z * kde(z) / surv
            };
            let eps = elasticities
                .get(j)
                .or(elasticities.last())
                .copied()
                .unwrap_or(0.4);
            100.0 * saez_rate(g, a, eps)
        })
        .collect()
}

/// The tax economy. Observation: rates / 100 (B), mean hours / max_hours, the
/// share of workers whose income falls in each bracket (B).
#[derive(Debug, Clone)]
pub struct TaxEconomy {
    params: TaxParams,
    skills: Vec<f64>,
    rates: Vec<f64>,
    hours: Vec<f64>,
    /// Learning workers: running mean utility and count per (worker, level).
    level_value: Vec<f64>,
    level_count: Vec<u32>,
    rng: EnvRng,
    phase: Phase,
    obs_space: Space,
    act_space: Space,
}

/// Outcome of one worker step.
#[derive(Debug, Clone, PartialEq)]
pub struct EconomyStep {
    /// Pre-tax incomes.
    pub incomes: Vec<f64>,
    /// Utilities.
    pub utilities: Vec<f64>,
    /// Equal rebate.
    pub rebate: f64,
    /// Social welfare `Σ u_i / max(z_i, 1)`.
    pub swf: f64,
}

impl TaxEconomy {
    /// Build (draws the skill population from `population_seed`).
    pub fn new(params: TaxParams) -> Result<Self, EnvError> {
        params.validate()?;
        let mut rng = EnvRng::seed_from_u64(params.population_seed);
        let skills: Vec<f64> = (0..params.n_workers)
            .map(|_| match params.skills {
                SkillDistribution::Gb2 { mu, sigma, nu, tau } => {
                    gb2_quantile(rng.random::<f64>(), mu, sigma, nu, tau) / 40.0
                }
                SkillDistribution::Uniform { low, high } => rng.random_range(low..=high),
            })
            .collect();
        let b = params.brackets.len() - 1;
        Ok(Self {
            rates: params.initial_rates.clone(),
            hours: vec![0.0; params.n_workers],
            level_value: vec![0.0; params.n_workers * 11],
            level_count: vec![0; params.n_workers * 11],
            skills,
            rng: crate::env::env_rng(None),
            phase: Phase::NotStarted,
            obs_space: Space::Box(BoxSpace::new(vec![0.0; 2 * b + 1], vec![1.0; 2 * b + 1])?),
            act_space: Space::MultiDiscrete { nvec: vec![5; b] },
            params,
        })
    }

    /// Build from JSON over the defaults.
    pub fn from_json(params: &serde_json::Value) -> Result<Self, EnvError> {
        Self::new(parse_params(ID, params)?)
    }

    /// Skills (income per weekly hour).
    pub fn skills(&self) -> &[f64] {
        &self.skills
    }
    /// Current rates (percent).
    pub fn rates(&self) -> &[f64] {
        &self.rates
    }
    /// Set the rates directly (baselines, exhaustive search).
    pub fn set_rates(&mut self, rates: &[f64]) -> Result<(), EnvError> {
        if rates.len() != self.rates.len() {
            return Err(EnvError::StateLength {
                env: ID.into(),
                expected: self.rates.len(),
                got: rates.len(),
                names: "rates per bracket",
            });
        }
        if let Some((i, &r)) = rates
            .iter()
            .enumerate()
            .find(|(_, r)| !(0.0..=100.0).contains(*r))
        {
            return Err(EnvError::InvalidState {
                env: ID.into(),
                index: i,
                name: "rate",
                value: r,
                reason: "must be a percentage in [0, 100]",
            });
        }
        self.rates.copy_from_slice(rates);
        Ok(())
    }

    /// One worker step under the current rates: choose hours, pay taxes, share the rebate.
    pub fn worker_step(&mut self) -> EconomyStep {
        let p = &self.params;
        let n = p.n_workers;
        let levels = |k: usize| p.max_hours * k as f64 / 10.0;
        let mut chosen = vec![0usize; n];
        for (i, chosen_i) in chosen.iter_mut().enumerate() {
            self.hours[i] = match p.workers {
                WorkerModel::Rational => best_response(
                    self.skills[i],
                    &p.brackets,
                    &self.rates,
                    p.c,
                    p.delta,
                    p.max_hours,
                ),
                WorkerModel::Learning => {
                    let row = &self.level_value[i * 11..(i + 1) * 11];
                    let cnt = &self.level_count[i * 11..(i + 1) * 11];
                    let k = if let Some(k) = cnt.iter().position(|&c| c == 0) {
                        k
                    } else if self.rng.random::<f64>() < p.epsilon {
                        self.rng.random_range(0..11)
                    } else {
                        (0..11).fold(0, |b, k| if row[k] > row[b] { k } else { b })
                    };
                    *chosen_i = k;
                    levels(k)
                }
            };
        }
        let incomes: Vec<f64> = self
            .hours
            .iter()
            .zip(&self.skills)
            .map(|(l, v)| v * l)
            .collect();
        let taxes: Vec<f64> = incomes
            .iter()
            .map(|&z| tax(z, &p.brackets, &self.rates))
            .collect();
        let rebate = taxes.iter().sum::<f64>() / n as f64;
        let utilities: Vec<f64> = (0..n)
            .map(|i| incomes[i] - taxes[i] + rebate - p.c * self.hours[i].powf(p.delta))
            .collect();
        let swf = utilities
            .iter()
            .zip(&incomes)
            .map(|(u, z)| u / z.max(1.0))
            .sum();
        if p.workers == WorkerModel::Learning {
            for (i, &k) in chosen.iter().enumerate() {
                let idx = i * 11 + k;
                self.level_count[idx] += 1;
                self.level_value[idx] +=
                    (utilities[i] - self.level_value[idx]) / self.level_count[idx] as f64;
            }
        }
        EconomyStep {
            incomes,
            utilities,
            rebate,
            swf,
        }
    }

    /// Mean SWF over one tax year at fixed rates.
    pub fn tax_year(&mut self) -> (f64, EconomyStep) {
        let steps = self.params.tax_year_steps;
        let mut total = 0.0;
        let mut last = None;
        for _ in 0..steps {
            let s = self.worker_step();
            total += s.swf;
            last = Some(s);
            if self.params.workers == WorkerModel::Rational {
                // rational workers repeat the same choice every step of the year
                total = last.as_ref().map(|s| s.swf).unwrap_or(0.0) * steps as f64;
                break;
            }
        }
        let last = last.unwrap_or(EconomyStep {
            incomes: vec![],
            utilities: vec![],
            rebate: 0.0,
            swf: 0.0,
        });
        (total / steps as f64, last)
    }

    fn write_obs(&self, obs: &mut [f64], incomes: &[f64]) {
        let b = self.rates.len();
        let n = self.params.n_workers as f64;
        for (o, r) in obs[..b].iter_mut().zip(&self.rates) {
            *o = r / 100.0;
        }
        obs[b] = self.hours.iter().sum::<f64>() / n / self.params.max_hours;
        for (j, o) in obs[b + 1..2 * b + 1].iter_mut().enumerate() {
            let (lo, hi) = (self.params.brackets[j], self.params.brackets[j + 1]);
            *o = incomes
                .iter()
                .filter(|&&z| z <= hi && (j == 0 || z > lo))
                .count() as f64
                / n;
        }
    }

    /// Exhaustive Stackelberg search over all rate vectors on the 10-point grid
    /// `{0, 10, ..., 100}^B` with the current worker model; returns `(rates, swf)`
    /// of the best (the reference solution of the miniature).
    pub fn exhaustive_search(&mut self) -> (Vec<f64>, f64) {
        let b = self.rates.len();
        let saved = self.rates.clone();
        let mut best = (saved.clone(), f64::NEG_INFINITY);
        for code in 0..11usize.pow(b as u32) {
            let mut c = code;
            let rates: Vec<f64> = (0..b)
                .map(|_| {
                    let r = (c % 11) as f64 * 10.0;
                    c /= 11;
                    r
                })
                .collect();
            self.rates.copy_from_slice(&rates);
            let swf = self.worker_step().swf;
            if swf > best.1 {
                best = (rates, swf);
            }
        }
        self.rates = saved;
        best
    }
}

impl Env for TaxEconomy {
    fn id(&self) -> &str {
        ID
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }

    /// Rates back to `initial_rates`; learning workers forget; one worker step fills the observation.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f64]) -> Result<Info, EnvError> {
        check_obs_len(ID, self.obs_space.raw_len(), obs)?;
        if seed.is_some() {
            self.rng = crate::env::env_rng(seed);
        }
        self.rates = self.params.initial_rates.clone();
        self.level_value.fill(0.0);
        self.level_count.fill(0);
        let s = self.worker_step();
        self.phase = Phase::Running;
        self.write_obs(obs, &s.incomes);
        Ok(Info::from([("swf".to_string(), s.swf)]))
    }

    /// One tax year: apply `Δ_j = 10 (k_j − 2)` percentage points (clamped to
    /// `[0, 100]`), then run the year's worker steps; reward = mean SWF.
    fn step_into(&mut self, action: &Action, obs: &mut [f64]) -> Result<Transition, EnvError> {
        check_obs_len(ID, self.obs_space.raw_len(), obs)?;
        self.act_space.check(ID, action)?;
        self.phase.ensure_running(ID)?;
        if let Action::MultiDiscrete(k) = action {
            for (r, &kj) in self.rates.iter_mut().zip(k) {
                *r = (*r + 10.0 * (kj as f64 - 2.0)).clamp(0.0, 100.0);
            }
        }
        let (reward, last) = self.tax_year();
        self.write_obs(obs, &last.incomes);
        let mut info = Info::new();
        info.insert("swf_per_worker", reward / self.params.n_workers as f64);
        info.insert("rebate", last.rebate);
        Ok(Transition {
            reward,
            terminated: false,
            truncated: false,
            info,
        })
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(&self.params).unwrap_or(serde_json::Value::Null)
    }

    fn set_params(&mut self, params: &serde_json::Value) -> Result<(), EnvError> {
        *self = Self::from_json(params)?;
        Ok(())
    }

    /// The rates (percent).
    fn state(&self) -> Option<Vec<f64>> {
        Some(self.rates.clone())
    }

    fn set_state(&mut self, state: &[f64]) -> Result<(), EnvError> {
        self.set_rates(state)?;
        self.phase = Phase::Running;
        Ok(())
    }
}
