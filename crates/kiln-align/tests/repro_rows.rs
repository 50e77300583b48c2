//! Full-size runs of the RL repro rows, asserting the headline figures that the committed
//! reports in `docs/repro/` show to hold (release build recommended).

use kiln_align::experiments::capo::{CapoRowConfig, run_capo_row};
use kiln_align::experiments::nft::{NftRowConfig, run_nft_row};
use kiln_align::experiments::tricks::{TricksConfig, run_tricks};

/// The rows seed the backend's global generator (weight init): tests of this file that ran
/// side by side would draw from it in an interleaved order, so they take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn mean_hw(x: &[f64]) -> (f64, f64) {
    let (lo, hi) = kiln_track::stats::t_ci95(x);
    (kiln_track::stats::mean(x), (hi - lo) / 2.0)
}

#[test]
#[ignore = "slow: full tricks-or-traps row (3 seeds x 3 methods)"]
fn lite_ppo_reaches_grpo_and_dapo() {
    let _turn = serial();
    let res = run_tricks(&TricksConfig::new(false), &mut |_| {}).unwrap();
    let (lite, lite_hw) = mean_hw(&res.final_accuracy(2));
    for m in [0, 1] {
        let (other, hw) = mean_hw(&res.final_accuracy(m));
        assert!(
            lite >= other - hw.max(lite_hw),
            "method {m}: {lite} vs {other}"
        );
    }
    assert!(lite > res.warm_accuracy + 0.1);
}

#[test]
#[ignore = "slow: full nft row (3 seeds x 2 methods)"]
fn nft_within_grpo_ci() {
    let _turn = serial();
    let res = run_nft_row(&NftRowConfig::new(false), &mut |_| {}).unwrap();
    let (grpo, hw) = mean_hw(&res.final_accuracy(0));
    let (nft, _) = mean_hw(&res.final_accuracy(1));
    assert!((nft - grpo).abs() <= hw, "NFT {nft} GRPO {grpo} ± {hw}");
}

/// What holds in the miniature: GRPO collapses at the fixed aggressive rate; CAPO's mask is
/// active there (every seed removes some tokens); and with the thresholds calibrated on the
/// miniature (tau_H = 1, tau_F = 0.01) CAPO at the conservative rate masks under 8% of the
/// tokens and stays within GRPO's confidence interval. CAPO does not stay stable at the
/// collapse rate for any threshold pair (see `docs/repro/capo.md`), so that part of the claim
/// is reported, not asserted.
#[test]
#[ignore = "slow: full capo row (sweep, 4 arms and the threshold grid x 3 seeds)"]
fn grpo_collapses_and_capo_masks_few_tokens() {
    let _turn = serial();
    let config = CapoRowConfig::new(false);
    let res = run_capo_row(&config, &mut |_| {}).unwrap();
    let (stable, hw) = mean_hw(&res.final_accuracy(0));
    let (collapsed, _) = mean_hw(&res.final_accuracy(2));
    assert!(stable > res.warm_accuracy, "{stable}");
    assert!(collapsed < res.warm_accuracy - 0.1, "{collapsed}");
    assert!(res.masked_fraction(3).iter().all(|m| *m > 0.0));
    let k = config
        .threshold_grid
        .iter()
        .position(|&(h, f)| h == 1.0 && f == 1e-2)
        .unwrap();
    let runs = &res.grid[0][k];
    let acc: Vec<f64> = runs.iter().map(|r| r.last().accuracy).collect();
    let (calibrated, _) = mean_hw(&acc);
    assert!(
        calibrated >= stable - hw,
        "CAPO {calibrated} GRPO {stable} ± {hw}"
    );
    assert!(
        runs.iter()
            .all(|r| r.mean_metric("train/masked_token_fraction") < 0.08)
    );
}
