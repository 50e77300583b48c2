//! Full-size runs of the RL repro rows, asserting the headline figures that the committed
//! reports in `docs/repro/` show to hold (release build recommended).

use kiln_align::experiments::capo::{CapoRowConfig, run_capo_row};
use kiln_align::experiments::nft::{NftRowConfig, run_nft_row};
use kiln_align::experiments::tricks::{TricksConfig, run_tricks};

fn mean_hw(x: &[f64]) -> (f64, f64) {
    let (lo, hi) = kiln_track::stats::t_ci95(x);
    (kiln_track::stats::mean(x), (hi - lo) / 2.0)
}

#[test]
#[ignore = "slow: full tricks-or-traps row (3 seeds x 3 methods)"]
fn lite_ppo_reaches_grpo_and_dapo() {
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
    let res = run_nft_row(&NftRowConfig::new(false), &mut |_| {}).unwrap();
    let (grpo, hw) = mean_hw(&res.final_accuracy(0));
    let (nft, _) = mean_hw(&res.final_accuracy(1));
    assert!((nft - grpo).abs() <= hw, "NFT {nft} GRPO {grpo} ± {hw}");
}

/// What holds in the miniature: GRPO collapses at the fixed aggressive rate and CAPO masks
/// under 8% of the tokens there. CAPO does not stay stable (see `docs/repro/capo.md`), so
/// that part of the claim is reported, not asserted.
#[test]
#[ignore = "slow: full capo row (sweep + 4 arms x 3 seeds)"]
fn grpo_collapses_and_capo_masks_few_tokens() {
    let res = run_capo_row(&CapoRowConfig::new(false), &mut |_| {}).unwrap();
    let (stable, _) = mean_hw(&res.final_accuracy(0));
    let (collapsed, _) = mean_hw(&res.final_accuracy(2));
    assert!(stable > res.warm_accuracy, "{stable}");
    assert!(collapsed < res.warm_accuracy - 0.1, "{collapsed}");
    assert!(res.masked_fraction(3).iter().all(|m| *m < 0.08));
}
