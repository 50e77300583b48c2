//! Known answers from the LLM Economist reference notes (§5).

use kiln_envs::tax_economy::{
    THREE_BRACKETS, TaxEconomy, TaxParams, WorkerModel, best_response, gb2_quantile, pareto_tail_a,
    saez_rate, tax,
};
use kiln_envs::{Action, Env};

#[test]
fn tax_function_on_three_brackets() {
    let r = [10.0, 20.0, 30.0];
    assert!((tax(50_000.0, &THREE_BRACKETS, &r) - 5_000.0).abs() < 1e-9);
    assert!((tax(100_000.0, &THREE_BRACKETS, &r) - 11_000.0).abs() < 1e-9);
    assert!((tax(200_000.0, &THREE_BRACKETS, &r) - 35_090.0).abs() < 1e-9);
}

#[test]
fn best_response_flat_tax() {
    let flat = [0.0, 1e7];
    let paper = |v: f64, tau: f64| best_response(v, &flat, &[tau], 0.0005, 3.5, 100.0);
    assert!(
        (paper(100.0, 0.0) - 79.944).abs() < 1e-3,
        "{}",
        paper(100.0, 0.0)
    );
    assert!((paper(100.0, 50.0) - 60.586).abs() < 1e-3);
    assert_eq!(paper(1250.0, 0.0), 100.0, "capped");
    assert!((paper(159.1, 0.0) - 96.26).abs() < 1e-2);
    assert!((paper(1.24, 0.0) - 13.81).abs() < 1e-2);
}

#[test]
fn gb2_quantiles_match_the_fit() {
    let q = |p| gb2_quantile(p, 72402.78, 2.0721, 0.48652, 1.14104);
    for (p, want) in [
        (0.1, 6_851.0),
        (0.25, 17_393.0),
        (0.5, 38_102.0),
        (0.75, 72_159.0),
        (0.9, 124_509.0),
        (0.99, 361_313.0),
    ] {
        let got = q(p);
        assert!((got - want).abs() / want < 1e-3, "p = {p}: {got} vs {want}");
    }
}

#[test]
fn saez_pieces() {
    assert!(
        (saez_rate(0.0, 2.0, 0.5) - 0.5).abs() < 1e-12,
        "G = 0: 1 / (1 + a eps)"
    );
    // Pareto(alpha = 2) above 100_000 by inverse CDF on a fine grid: a -> alpha
    let n = 200_000;
    let incomes: Vec<f64> = (0..n)
        .map(|i| 100_000.0 * (1.0 - (i as f64 + 0.5) / n as f64).powf(-1.0 / 2.0))
        .collect();
    let a = pareto_tail_a(&incomes, 100_000.0, 100_000.0);
    assert!((a - 2.0).abs() < 0.02, "{a}");
    assert!((saez_rate(0.0, a, 0.5) - 0.5).abs() < 0.01);
}

#[test]
fn rebate_balances_budget_and_planner_clamps() {
    let mut env = TaxEconomy::new(TaxParams {
        n_workers: 20,
        ..Default::default()
    })
    .expect("valid");
    env.reset(Some(0)).expect("reset");
    let s = env.worker_step();
    let taxes: f64 = s
        .incomes
        .iter()
        .map(|&z| tax(z, &THREE_BRACKETS, env.rates()))
        .sum();
    assert!(
        (s.rebate * 20.0 - taxes).abs() < 1e-6,
        "sum of rebates = sum of taxes"
    );
    // 50 + 20 + 20 + 20 -> 100 (clamped), never above
    for _ in 0..3 {
        env.step(&Action::MultiDiscrete(vec![4, 2, 0]))
            .expect("step");
    }
    assert_eq!(env.rates(), &[100.0, 50.0, 0.0]);
    assert!(
        env.step(&Action::MultiDiscrete(vec![5, 0, 0])).is_err(),
        "index 5 is outside {{0..4}}"
    );
}

#[test]
fn default_constants_make_labour_elastic_paper_constants_do_not() {
    let hours_at = |params: TaxParams, rate: f64| {
        let mut env = TaxEconomy::new(params).expect("valid");
        env.set_rates(&[rate; 3]).expect("rates");
        let s = env.worker_step();
        s.incomes
            .iter()
            .zip(env.skills())
            .map(|(z, v)| z / v)
            .sum::<f64>()
            / s.incomes.len() as f64
    };
    let elastic = hours_at(TaxParams::default(), 0.0) - hours_at(TaxParams::default(), 60.0);
    let paper = hours_at(TaxParams::paper(), 0.0) - hours_at(TaxParams::paper(), 60.0);
    assert!(
        elastic > 8.0,
        "mean hours fall by {elastic} h when rates go 0 -> 60 %"
    );
    assert!(paper < elastic / 2.0, "paper constants: {paper} h");
}

#[test]
fn learning_workers_and_exhaustive_search_run() {
    let mut env = TaxEconomy::new(TaxParams {
        n_workers: 10,
        workers: WorkerModel::Learning,
        ..Default::default()
    })
    .expect("valid");
    env.reset(Some(1)).expect("reset");
    let s = env
        .step(&Action::MultiDiscrete(vec![2, 2, 2]))
        .expect("step");
    assert!(s.reward.is_finite());
    let mut rational = TaxEconomy::new(TaxParams {
        n_workers: 10,
        ..Default::default()
    })
    .expect("valid");
    let (rates, swf) = rational.exhaustive_search();
    rational.set_rates(&rates).expect("rates");
    assert!((rational.worker_step().swf - swf).abs() < 1e-9);
}
