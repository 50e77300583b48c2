//! Agnostic-RL miniature (reference note `agnostic-rl.md` Sec. 4): a layered
//! MDP (H = 6, 2 actions, 30 states per layer), the singletons class
//! (`|Pi| = 181`), trajectory-tree ERM (generative access) against naive
//! rollout ERM, suboptimality to the best policy *in the class* (exact DP)
//! against environment queries. Second part (`mu`-reset access): PSDP over a
//! per-layer threshold class against brute-force evaluation of every
//! non-stationary policy of the class, exact and from samples, under a
//! uniform and an oracle baseline distribution (`agnostic-rl-psdp.png`).

use std::path::Path;

use kiln_track::{Curve, PlotOptions, markdown_table};
use rand::{SeedableRng, rngs::StdRng};

use crate::agnostic::{
    LayerClass, LayeredMdp, brute_force_best, exact_values, optimal_value, psdp_exact,
    psdp_sampled, psdp_samples_needed, rollout_erm, trajectory_tree_erm, trees_needed,
};
use crate::error::RobustError;
use rand::RngExt;

use super::{ci, fmt};

/// Runs the experiment; see the module docs.
pub fn run(out_dir: &Path, quick: bool) -> Result<String, RobustError> {
    let (width, seeds) = if quick { (10, 3) } else { (30, 20) };
    let horizon = 6;
    let budgets: Vec<usize> = if quick {
        vec![1, 4]
    } else {
        vec![1, 2, 4, 8, 16, 32]
    };
    let mut tree_rows: Vec<Vec<(f64, f64)>> = vec![vec![]; seeds];
    let mut naive_rows: Vec<Vec<(f64, f64)>> = vec![vec![]; seeds];
    let mut table = vec![];
    let mut class_gap = vec![];
    let mut sizes = vec![];
    for (bi, &b) in budgets.iter().enumerate() {
        let (mut ts, mut ns, mut tq, mut nq) = (vec![], vec![], vec![], vec![]);
        for seed in 0..seeds {
            let mut rng = StdRng::seed_from_u64(seed as u64);
            let mdp = LayeredMdp::random(width, horizon, &mut rng);
            let exact = exact_values(&mdp);
            let best = exact.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if bi == 0 {
                class_gap.push(optimal_value(&mdp) - best);
            }
            // equal query budgets: b naive rounds vs as many trees as that buys
            let (pn, qn) = rollout_erm(&mdp, b, &mut rng);
            let (pt, qt, _) = {
                let mut trees = 1;
                let mut res = trajectory_tree_erm(&mdp, trees, &mut rng);
                let per_tree = res.1.max(1);
                trees = (qn / per_tree).max(1);
                if trees > 1 {
                    res = trajectory_tree_erm(&mdp, trees, &mut rng);
                }
                if bi == 0 {
                    sizes.push(res.1 as f64 / trees as f64);
                }
                res
            };
            ts.push(best - exact[pt]);
            ns.push(best - exact[pn]);
            tq.push(qt as f64);
            nq.push(qn as f64);
            tree_rows[seed].push((qn as f64, best - exact[pt]));
            naive_rows[seed].push((qn as f64, best - exact[pn]));
        }
        table.push(vec![
            fmt(kiln_track::stats::mean(&nq)),
            ci(&ns),
            fmt(kiln_track::stats::mean(&tq)),
            ci(&ts),
        ]);
    }
    let class = horizon * width + 1;
    let mut md = String::from(
        "# Agnostic RL: trajectory-tree ERM and PSDP — `kiln repro agnostic-rl`\n\n**What could be verified:** a search of public sources (arXiv listings of the thesis 2506.01884 and of its papers A (2310.06113) and B (2504.05405), talk announcements, mirrors) returned only their abstracts and introductions; the thesis's own algorithm statements and constants could not be read. Verified from the abstracts: with a generative model, the spanning capacity characterises learnability (paper A); under mu-resets paper B gives lower bounds for PSDP and CPI without policy completeness. Kiln therefore runs the classical algorithms those results are about, from their original papers: trajectory-tree ERM (Kearns, Mansour & Ng 1999) with generative access, on the singletons class of paper A, and PSDP (Bagnell, Kakade, Ng & Schneider 2003) with mu-resets. Sample counts are Kiln's Hoeffding + union-bound derivations, not the thesis's (unverified).\n\n## Trajectory-tree ERM (generative access)\n\n",
    );
    md.push_str(&format!(
        "Layered MDP: H = {horizon}, 2 actions, {width} states per layer, random 3-successor transitions; class: all-zeros plus one policy per state playing action 1 only there (|Pi| = {class}). V* - max_Pi V = {} (the target is best-in-class, not V*). Average tree size {} queries (bound H (H + 1) / 2 + H = {} for this class), against |Pi| H = {} queries per naive round. Trees for eps = 0.5, delta = 0.05 by Hoeffding: {}. {seeds} seeds.\n\n",
        ci(&class_gap),
        ci(&sizes),
        horizon * (horizon + 1) / 2 + horizon,
        class * horizon,
        trees_needed(horizon, class, 0.5, 0.05)
    ));
    md.push_str(&markdown_table(
        &[
            "queries (naive)",
            "naive ERM suboptimality in class",
            "queries (trees)",
            "trajectory-tree ERM suboptimality in class",
        ],
        &table,
    ));
    let curves = vec![
        Curve {
            label: "trajectory-tree ERM".into(),
            runs: tree_rows,
        },
        Curve {
            label: "naive rollout ERM".into(),
            runs: naive_rows,
        },
    ];
    kiln_track::learning_curves(
        &curves,
        &PlotOptions {
            title: "suboptimality in class vs generative queries".into(),
            x_label: "queries".into(),
            y_label: "max_Pi V - V(pi_hat)".into(),
            ..Default::default()
        },
        &out_dir.join("agnostic-rl"),
    )?;
    md.push_str("\n![suboptimality](agnostic-rl.png)\n");
    md.push_str(&psdp_section(out_dir, quick)?);
    Ok(md)
}

/// PSDP with `mu`-resets on a per-layer threshold class (reference note Sec.
/// 2.6 and Sec. 4 (3)).
fn psdp_section(out_dir: &Path, quick: bool) -> Result<String, RobustError> {
    let (width, horizon, seeds) = if quick { (8, 4, 3) } else { (30, 6, 20) };
    let thetas = [0.0, 1.0 / 3.0, 2.0 / 3.0];
    let budgets: Vec<usize> = if quick {
        vec![10, 100]
    } else {
        vec![10, 30, 100, 300, 1000, 3000, 10000]
    };
    let (eps, delta) = (0.5, 0.05);
    let mut gap_star = vec![];
    let mut exact_uniform = vec![];
    let mut exact_oracle = vec![];
    let mut complete_gap = vec![];
    let mut counts = 0;
    let mut needed = vec![];
    let mut hoeffding_gap = vec![];
    let mut oracle_runs: Vec<Vec<(f64, f64)>> = vec![vec![]; seeds];
    let mut uniform_runs: Vec<Vec<(f64, f64)>> = vec![vec![]; seeds];
    let mut per_budget: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> =
        vec![(vec![], vec![], vec![]); budgets.len()];
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(1000 + seed as u64);
        let mdp = LayeredMdp::random(width, horizon, &mut rng);
        let classes: Vec<LayerClass> = (0..horizon)
            .map(|_| {
                let x: Vec<f64> = (0..width).map(|_| rng.random_range(0.0..1.0)).collect();
                LayerClass::thresholds(&x, &thetas)
            })
            .collect();
        let Some((best, v_best, count)) = brute_force_best(&mdp, &classes) else {
            continue;
        };
        counts = count;
        let v_star = optimal_value(&mdp);
        gap_star.push(v_star - v_best);
        let uniform = vec![vec![1.0 / width as f64; width]; horizon];
        let oracle = mdp.state_distributions(&best);
        exact_uniform.push(v_best - mdp.evaluate(&psdp_exact(&mdp, &classes, &uniform)));
        exact_oracle.push(v_best - mdp.evaluate(&psdp_exact(&mdp, &classes, &oracle)));
        let complete = vec![LayerClass::Complete; horizon];
        complete_gap.push(v_star - mdp.evaluate(&psdp_exact(&mdp, &complete, &uniform)));
        for (bi, &m) in budgets.iter().enumerate() {
            let (po, qo) = psdp_sampled(&mdp, &classes, &oracle, &vec![m; horizon], &mut rng);
            let (pu, _) = psdp_sampled(&mdp, &classes, &uniform, &vec![m; horizon], &mut rng);
            let (go, gu) = (v_best - mdp.evaluate(&po), v_best - mdp.evaluate(&pu));
            oracle_runs[seed].push((qo as f64, go));
            uniform_runs[seed].push((qo as f64, gu));
            per_budget[bi].0.push(qo as f64);
            per_budget[bi].1.push(go);
            per_budget[bi].2.push(gu);
        }
        if !quick || seed == 0 {
            let m: Vec<usize> = (0..horizon)
                .map(|h| psdp_samples_needed(horizon, h, classes[h].ln_size(width), eps, delta))
                .collect();
            let (p, q) = psdp_sampled(&mdp, &classes, &oracle, &m, &mut rng);
            hoeffding_gap.push(v_best - mdp.evaluate(&p));
            needed.push(q as f64);
        }
    }
    let class = thetas.len() * 2;
    let mut md = format!(
        "\n## PSDP with mu-resets\n\nPSDP (Bagnell, Kakade, Ng & Schneider 2003) is the mu-reset algorithm paper B of the thesis analyses (its lower bounds say PSDP needs policy completeness); it is implemented from the 2003 paper, not from the thesis (unverified). Layered MDP as above (H = {horizon}, {width} states per layer); class: per layer, threshold policies on a random state feature, `1[x >= t]` and `1[x < t]` for t in {{0, 1/3, 2/3}} (|Pi_h| = {class}, product class of {counts} non-stationary policies, all evaluated exactly by brute force). Baselines: uniform over each layer, or the oracle `mu_h = d_h` of the best policy in the class. {seeds} seeds.\n\n- V* - max_Pi V: {}\n- exact PSDP, oracle baseline, max_Pi V - V(PSDP): {} (the theory says 0)\n- exact PSDP, uniform baseline, max_Pi V - V(PSDP): {} (the class is not complete, so a mismatched baseline costs value)\n- exact PSDP, complete class, uniform baseline, V* - V(PSDP): {} (backward induction)\n- sampled PSDP, oracle baseline, Hoeffding sample count for eps = {eps}, delta = {delta} (`m_h = 2 H^2 (H-h)^2 ln(2 H |Pi_h| / delta) / eps^2`): {} queries per run, suboptimality in class {} (bound {eps})\n\n",
        ci(&gap_star),
        ci(&exact_oracle),
        ci(&exact_uniform),
        ci(&complete_gap),
        fmt(kiln_track::stats::mean(&needed)),
        ci(&hoeffding_gap),
    );
    let rows: Vec<Vec<String>> = budgets
        .iter()
        .zip(&per_budget)
        .map(|(m, (q, go, gu))| {
            vec![
                m.to_string(),
                fmt(kiln_track::stats::mean(q)),
                ci(go),
                ci(gu),
            ]
        })
        .collect();
    md.push_str(&markdown_table(
        &[
            "reset samples per layer",
            "queries",
            "PSDP (oracle mu) suboptimality in class",
            "PSDP (uniform mu) suboptimality in class",
        ],
        &rows,
    ));
    kiln_track::learning_curves(
        &[
            Curve {
                label: "PSDP, oracle baseline d^{best in class}".into(),
                runs: oracle_runs,
            },
            Curve {
                label: "PSDP, uniform baseline".into(),
                runs: uniform_runs,
            },
        ],
        &PlotOptions {
            title: "PSDP: suboptimality in class vs generative queries".into(),
            x_label: "queries".into(),
            y_label: "max_Pi V - V(pi_hat)".into(),
            ..Default::default()
        },
        &out_dir.join("agnostic-rl-psdp"),
    )?;
    md.push_str("\n![PSDP](agnostic-rl-psdp.png)\n");
    Ok(md)
}
