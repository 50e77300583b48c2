//! DPO, cDPO and rDPO on a sequence policy (Rafailov et al. 2023, eq. 7; Chowdhury, Kini,
//! Natarajan 2024, Sec. 3): the implicit reward margin
//! `h = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]` with
//! sequence log-probabilities summed over completion tokens only (prompt masked), the
//! reference being the frozen initial policy, and the loss of
//! [`crate::losses::preference_loss`]. Metrics per step: `train/loss`,
//! `train/preference_accuracy` (fraction of pairs with `h > 0`), `train/margin`.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use kiln_rl::Callback;
use kiln_tensor::{AdamSettings, clip_grad_norm};
use rand::RngExt;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::losses::{PreferenceLoss, preference_loss};
use crate::policy::{SampleOptions, SequencePolicy, TokenBatch, host_logprobs, to_host};
use crate::tasks::{Instance, Problem};

/// A preference pair of completions of one prompt (the observed label may be flipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencePair {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// The completion labelled as preferred.
    pub chosen: Vec<u32>,
    /// The completion labelled as dispreferred.
    pub rejected: Vec<u32>,
}

/// A preference pair whose observed label may have been flipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisyPair {
    /// The pair as observed (after the flip, if any).
    pub pair: PreferencePair,
    /// Whether the observed order is the wrong one.
    pub flipped: bool,
    /// Whether the wrong completion was sampled from the policy (else a perturbed answer).
    pub wrong_sampled: bool,
}

/// A completion of `p` that its verifier rejects: the reference answer's integer moved by
/// 1..=9, or for countdown the reference expression used twice (which reuses every number).
fn wrong_answer(p: &Problem, rng: &mut StdRng) -> String {
    match &p.instance {
        Instance::Integer(x) => {
            let d = rng.random_range(1..=9i64);
            let d = if rng.random::<bool>() { d } else { -d };
            (x + d).to_string()
        }
        Instance::Countdown { .. } => format!("{}+{}", p.answer, p.answer),
    }
}

/// Preference pairs from a verifiable task (the labels the rDPO paper's noise model
/// corrupts, Sec. 2): for each problem, `samples` completions are drawn from `policy` with
/// `sampling`; the first correct one (else the reference answer) is preferred over the first
/// wrong one (else a perturbed reference answer, [`wrong_answer`]); then the order is
/// flipped with probability `flip_rate`, independently per pair.
pub fn verifiable_pairs<P: SequencePolicy>(
    policy: &P,
    problems: &[Problem],
    samples: usize,
    sampling: &SampleOptions,
    flip_rate: f64,
    rng: &mut StdRng,
) -> Result<Vec<NoisyPair>> {
    if !(0.0..0.5).contains(&flip_rate) {
        return Err(invalid(
            "flip_rate",
            flip_rate,
            "flip rate must lie in [0, 0.5)",
        ));
    }
    let prompts = super::encode_prompts(policy.codec(), problems)?;
    let drawn = if samples > 0 {
        policy.sample(&prompts, samples, sampling, rng)?
    } else {
        Vec::new()
    };
    let with_eos = |text: &str| policy.codec().encode_answer(text);
    let mut out = Vec::with_capacity(problems.len());
    for (i, (p, prompt)) in problems.iter().zip(prompts).enumerate() {
        let mut good = None;
        let mut bad = None;
        for c in drawn.iter().skip(i * samples).take(samples) {
            if !c.finished {
                continue;
            }
            let ok = policy.codec().verify(p, &c.tokens).correct;
            let slot = if ok { &mut good } else { &mut bad };
            if slot.is_none() {
                *slot = Some(c.tokens.clone());
            }
        }
        let chosen = match good {
            Some(t) => t,
            None => with_eos(&p.answer)?,
        };
        let wrong_sampled = bad.is_some();
        let rejected = match bad {
            Some(t) => t,
            None => with_eos(&wrong_answer(p, rng))?,
        };
        let flipped = rng.random::<f64>() < flip_rate;
        let (chosen, rejected) = if flipped {
            (rejected, chosen)
        } else {
            (chosen, rejected)
        };
        out.push(NoisyPair {
            pair: PreferencePair {
                prompt,
                chosen,
                rejected,
            },
            flipped,
            wrong_sampled,
        });
    }
    Ok(out)
}

/// The implicit reward margins `h` (module docs) of `pairs` under `policy` against
/// `reference`, computed in batches of `batch_size` pairs without gradients.
pub fn implicit_margins<P: SequencePolicy>(
    policy: &P,
    reference: &P,
    pairs: &[PreferencePair],
    batch_size: usize,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(batch_size.max(1)) {
        let prompts: Vec<&[u32]> = chunk
            .iter()
            .chain(chunk)
            .map(|p| p.prompt.as_slice())
            .collect();
        let completions: Vec<&[u32]> = chunk
            .iter()
            .map(|p| p.chosen.as_slice())
            .chain(chunk.iter().map(|p| p.rejected.as_slice()))
            .collect();
        let batch = TokenBatch::from_pairs(&prompts, &completions)?;
        let seq = |lp: Vec<f32>| -> Vec<f64> {
            lp.chunks(batch.len)
                .map(|r| r.iter().map(|&x| f64::from(x)).sum())
                .collect()
        };
        let pi = seq(host_logprobs(policy, &batch)?);
        let re = seq(host_logprobs(reference, &batch)?);
        let n = chunk.len();
        out.extend((0..n).map(|i| (pi[i] - re[i]) - (pi[n + i] - re[n + i])));
    }
    Ok(out)
}

/// Hyperparameters of a DPO-family run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoConfig {
    /// DPO, cDPO or rDPO (with its flip rate).
    pub loss: PreferenceLoss,
    /// KL temperature beta.
    pub beta: f64,
    /// Passes over the pairs.
    pub epochs: usize,
    /// Pairs per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Global gradient-norm clip (0 disables it).
    pub max_grad_norm: f64,
    /// Adam settings.
    pub adam: AdamSettings,
}

impl DpoConfig {
    /// Checks ranges, naming the key (a flip rate >= 0.5 is rejected as `loss.eps`).
    pub fn validate(&self) -> Result<()> {
        self.loss.validate()?;
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(invalid("beta", self.beta, "must be positive"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", self.lr, "must be positive"));
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(invalid(
                "batch_size",
                self.batch_size,
                "epochs and batch_size must be at least 1",
            ));
        }
        self.adam.validate()?;
        Ok(())
    }
}

/// Sequence log-probability sums `[n]` of `completions` (differentiable).
fn sequence_logprobs<P: SequencePolicy>(policy: &P, batch: &TokenBatch) -> Result<Tensor<1>> {
    let lp = policy.token_scores(batch)?.logprobs;
    Ok(lp.sum_dim(1).reshape([batch.batch]))
}

/// Trains `policy` (on an autodiff device) on `pairs`; returns the trained policy.
pub fn train_dpo<P: SequencePolicy>(
    mut policy: P,
    pairs: &[PreferencePair],
    config: &DpoConfig,
    rng: &mut StdRng,
    callback: &mut dyn Callback,
) -> Result<P> {
    config.validate()?;
    let reference = policy.valid();
    let mut optim = config.adam.build()?;
    let mut step = 0u64;
    for _ in 0..config.epochs {
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(config.batch_size) {
            let n = chunk.len();
            let prompts: Vec<&[u32]> = chunk
                .iter()
                .chain(chunk)
                .map(|&i| pairs[i].prompt.as_slice())
                .collect();
            let completions: Vec<&[u32]> = chunk
                .iter()
                .map(|&i| pairs[i].chosen.as_slice())
                .chain(chunk.iter().map(|&i| pairs[i].rejected.as_slice()))
                .collect();
            let batch = TokenBatch::from_pairs(&prompts, &completions)?;
            let ref_seq: Vec<f32> = host_logprobs(&reference, &batch)?
                .chunks(batch.len)
                .map(|r| r.iter().sum())
                .collect();
            let device = policy.device();
            let seq = sequence_logprobs(&policy, &batch)?
                - Tensor::<1>::from_floats(ref_seq.as_slice(), &device);
            let h = seq.clone().narrow(0, 0, n) - seq.narrow(0, n, n);
            let loss = preference_loss(h.clone(), config.beta, config.loss);
            let hv = to_host(h.detach());
            let value = f64::from(to_host(loss.clone().detach())[0]);
            let grads = GradientsParams::from_grads(loss.backward(), &policy);
            let grads = if config.max_grad_norm > 0.0 {
                clip_grad_norm(&policy, grads, config.max_grad_norm).0
            } else {
                grads
            };
            policy = optim.step(config.lr, policy, grads);
            step += 1;
            let acc = hv.iter().filter(|&&x| x > 0.0).count() as f64 / n as f64;
            let margin = hv.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
            if !callback.on_update(
                step,
                &[
                    ("train/loss", value),
                    ("train/preference_accuracy", acc),
                    ("train/margin", margin),
                ],
            )? {
                return Ok(policy);
            }
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TinyLmConfig;
    use crate::policy::host_logprobs;
    use crate::vocab::CharVocab;
    use kiln_rl::NoCallback;
    use kiln_tensor::testing::cpu;
    use rand::SeedableRng;

    #[test]
    fn verifiable_pairs_flip_at_the_rate() {
        use crate::tasks::{TaskKind, TaskSpec, TaskSplits};
        let device = cpu();
        let policy = TinyLmConfig::default().init(&device).unwrap();
        let splits =
            TaskSplits::new(TaskSpec::new(TaskKind::Addition, 2).unwrap(), 0, 400, 0).unwrap();
        let opts = SampleOptions {
            max_new_tokens: 4,
            ..SampleOptions::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let pairs = verifiable_pairs(&policy, &splits.train, 2, &opts, 0.3, &mut rng).unwrap();
        let flips = pairs.iter().filter(|p| p.flipped).count() as f64 / 400.0;
        assert!((flips - 0.3).abs() < 0.07, "{flips}");
        for (p, q) in pairs.iter().zip(&splits.train) {
            let (w, l) = if p.flipped {
                (&p.pair.rejected, &p.pair.chosen)
            } else {
                (&p.pair.chosen, &p.pair.rejected)
            };
            assert!(q.verify(&CharVocab.decode(w)).correct);
            assert!(!q.verify(&CharVocab.decode(l)).correct);
        }
        let e = verifiable_pairs(&policy, &splits.train, 1, &opts, 0.5, &mut rng).unwrap_err();
        assert!(e.to_string().contains("flip_rate"), "{e}");
        let same = implicit_margins(&policy, &policy, &[pairs[0].pair.clone()], 4).unwrap();
        assert_eq!(same, vec![0.0]);
    }

    /// DPO and rDPO raise the preferred completions' log-ratio over the rejected ones.
    #[test]
    fn dpo_and_rdpo_prefer_chosen() {
        let device = cpu().autodiff();
        kiln_tensor::Seeds::new(2).seed_device(&device);
        let policy = TinyLmConfig::default().init(&device).unwrap();
        // Prefer completions made of '1' (id 3) over those made of '2' (id 4).
        let pairs: Vec<PreferencePair> = (0..16)
            .map(|i| PreferencePair {
                prompt: vec![2 + (i % 10) as u32, 16],
                chosen: vec![3, 3, 1],
                rejected: vec![4, 4, 1],
            })
            .collect();
        let batch =
            TokenBatch::from_pairs(&[&[5, 16], &[5, 16]], &[&[3, 3, 1], &[4, 4, 1]]).unwrap();
        for loss in [PreferenceLoss::Dpo, PreferenceLoss::Rdpo { eps: 0.2 }] {
            let config = DpoConfig {
                loss,
                beta: 0.5,
                epochs: 10,
                batch_size: 8,
                lr: 1e-2,
                max_grad_norm: 1.0,
                adam: AdamSettings::default(),
            };
            let before: Vec<f32> = host_logprobs(&policy, &batch).unwrap();
            let trained = train_dpo(
                policy.clone(),
                &pairs,
                &config,
                &mut StdRng::seed_from_u64(0),
                &mut NoCallback,
            )
            .unwrap();
            let after: Vec<f32> = host_logprobs(&trained, &batch).unwrap();
            let margin =
                |v: &[f32]| v[..batch.len].iter().sum::<f32>() - v[batch.len..].iter().sum::<f32>();
            assert!(
                margin(&after) > margin(&before) + 2.0,
                "{loss:?}: {} -> {}",
                margin(&before),
                margin(&after)
            );
        }
        let bad = DpoConfig {
            loss: PreferenceLoss::Rdpo { eps: 0.5 },
            beta: 0.1,
            epochs: 1,
            batch_size: 1,
            lr: 1e-3,
            max_grad_norm: 0.0,
            adam: AdamSettings::default(),
        };
        assert!(bad.validate().unwrap_err().to_string().contains("loss.eps"));
    }
}
