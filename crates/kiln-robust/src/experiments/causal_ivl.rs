//! Causal-IVL miniature (reference note `causal-ivl.md` Sec. 4): Example 2 of
//! the paper over a sweep of the confounding strength kappa; nCER of ERM,
//! DA+ERM, DA+IV (2SLS with the augmentation parameters as instrument) and
//! DA+IVL_alpha with alpha by hold-out CV over 10 log-spaced values in
//! [1e-4, 1].

use std::path::Path;

use kiln_track::{Curve, PlotOptions, markdown_table};
use rand::{SeedableRng, rngs::StdRng};

use crate::error::RobustError;
use crate::ivl::{
    LinearSimulationConfig, ivl_cross_validated, ncer, ols, simulate, two_stage_least_squares,
};

use super::ci;

/// Runs the sweep; see the module docs.
pub fn run(out_dir: &Path, quick: bool) -> Result<String, RobustError> {
    let (dim, seeds, kappas): (usize, u64, Vec<f64>) = if quick {
        (8, 4, vec![0.0, 0.5, 1.0])
    } else {
        (32, 32, (0..16).map(|i| i as f64 / 15.0).collect())
    };
    let alphas: Vec<f64> = (0..10)
        .map(|i| 10f64.powf(-4.0 + 4.0 * i as f64 / 9.0))
        .collect();
    let names = ["ERM", "DA+ERM", "DA+IV (2SLS)", "DA+IVL (CV)"];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![vec![]; kappas.len()]; names.len()];
    for (ki, &kappa) in kappas.iter().enumerate() {
        for seed in 0..seeds {
            let mut rng = StdRng::seed_from_u64(1000 * seed + ki as u64);
            let sim = simulate(
                &LinearSimulationConfig {
                    dim,
                    samples: 2048,
                    kappa,
                    gamma: 1.0,
                    sigma: 0.1,
                },
                &mut rng,
            );
            let ests = [
                ols(&sim.x, &sim.y),
                ols(&sim.gx, &sim.y),
                two_stage_least_squares(&sim.gx, &sim.y, &sim.g),
                ivl_cross_validated(&sim, &alphas).0,
            ];
            for (mi, h) in ests.iter().enumerate() {
                results[mi][ki].push(ncer(h, &sim.f));
            }
        }
    }
    let mut md = String::from(
        "# Causal effect estimation with outcome-invariant DA — `kiln repro causal-ivl`\n\n",
    );
    md.push_str(&format!(
        "Example 2 of the paper (acyclic, sigma = 0.1, n = 2048, m = {dim}, k = m - 1 null-space directions, gamma = 1), {seeds} random SEMs per kappa. nCER = ||h - f||^2 / (||h - f||^2 + ||f||^2), mean ± 95% CI. Alpha for DA+IVL is chosen on a 20% hold-out by the held-out IV risk (Kiln's reading of the paper's vanilla CV).\n\n"
    ));
    let show: Vec<usize> = if quick {
        (0..kappas.len()).collect()
    } else {
        vec![0, 5, 10, 15]
    };
    let rows: Vec<Vec<String>> = show
        .iter()
        .map(|&ki| {
            let mut r = vec![format!("{:.2}", kappas[ki])];
            r.extend((0..names.len()).map(|mi| ci(&results[mi][ki])));
            r
        })
        .collect();
    let mut headers = vec!["kappa"];
    headers.extend(names);
    md.push_str(&markdown_table(&headers, &rows));
    let curves: Vec<Curve> = names
        .iter()
        .enumerate()
        .map(|(mi, n)| Curve {
            label: n.to_string(),
            runs: (0..seeds as usize)
                .map(|s| {
                    kappas
                        .iter()
                        .enumerate()
                        .map(|(ki, &k)| (k, results[mi][ki][s]))
                        .collect()
                })
                .collect(),
        })
        .collect();
    kiln_track::learning_curves(
        &curves,
        &PlotOptions {
            title: "nCER vs confounding strength".into(),
            x_label: "kappa".into(),
            y_label: "nCER".into(),
            ..Default::default()
        },
        &out_dir.join("causal-ivl"),
    )?;
    md.push_str("\n![nCER vs kappa](causal-ivl.png)\n");
    Ok(md)
}
