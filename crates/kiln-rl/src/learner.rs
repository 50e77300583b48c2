//! One life cycle for every learner (Stable-Baselines3's shape): build from a config, `learn`,
//! `predict`, `evaluate`, `save`, and load back by reading the checkpoint's `algo` key. The
//! CLI and the experiments switch algorithms by changing one word through [`make_learner`] and
//! [`load_learner`].

use std::path::Path;

use burn::tensor::Device;
use kiln_envs::Action;
use serde::de::DeserializeOwned;

use crate::algos::dqn::{Dqn, DqnConfig};
use crate::algos::ppo::{Ppo, PpoConfig};
use crate::algos::reinforce::{Reinforce, ReinforceConfig};
use crate::algos::sac::{Sac, SacConfig};
use crate::algos::stochastic_pg::{PgMethod, StochasticPg, StochasticPgConfig};
use crate::algos::td3::{Td3, Td3Config};
use crate::callback::Callback;
use crate::error::{Result, RlError};
use crate::eval::evaluate_episodes;

/// What every learner can do once built.
pub trait Learner {
    /// The algorithm's name as `kiln train --algo` spells it (`ppo`, `sac`, ...).
    fn algo(&self) -> &'static str;

    /// The environment id the learner trains on.
    fn env_id(&self) -> &str;

    /// Environment steps taken so far (summed over parallel envs).
    fn global_step(&self) -> u64;

    /// The learner's full config as JSON (what `config.json` records).
    fn config_json(&self) -> serde_json::Value;

    /// Trains for about `total_steps` further environment steps, reporting each update's named
    /// diagnostics to `callback`; stops early (cleanly, with a consistent learner) as soon as
    /// the callback returns `false`.
    fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()>;

    /// The action for one observation: the policy's mode if `deterministic`, else a sample.
    fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action>;

    /// Writes the learner to `<stem>.safetensors` (weights) and `<stem>.json` (a JSON object
    /// whose `algo` key names the learner, plus whatever `load` needs).
    fn save(&self, stem: &Path) -> Result<()>;

    /// Deterministic evaluation: `episodes` episodes of a fresh `env_id()`, episode `k` seeded
    /// `seed + k`; returns each episode's return.
    fn evaluate(&mut self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        let mut env = kiln_envs::make(self.env_id())?;
        evaluate_episodes(&mut env, episodes, seed, |obs| self.predict(obs, true))
    }
}

/// The learners [`make_learner`] knows, as `--algo` spells them.
pub const ALGOS: &[&str] = &["ppo", "sac", "td3", "dqn", "reinforce", "pg-igt", "harpg"];

/// Builds the learner `algo` for `env_id` with `seed` on `device`. `config` is the algorithm's
/// JSON config (unknown keys and out-of-range values are errors naming the key); `None` takes
/// the algorithm's default for that environment.
pub fn make_learner(
    algo: &str,
    env_id: &str,
    seed: u64,
    config: Option<serde_json::Value>,
    device: Device,
) -> Result<Box<dyn Learner>> {
    match algo {
        "ppo" => {
            let config = match config {
                Some(value) => parse_config::<PpoConfig>(value, "ppo")?,
                None => PpoConfig::default_for(env_id)?,
            };
            config.validate()?;
            Ok(Box::new(Ppo::with_device(config, env_id, seed, device)?))
        }
        "sac" => {
            let config = match config {
                Some(value) => parse_config::<SacConfig>(value, "sac")?,
                None => SacConfig::default_for(env_id),
            };
            Ok(Box::new(Sac::with_device(config, env_id, seed, device)?))
        }
        "td3" => {
            let config = match config {
                Some(value) => parse_config::<Td3Config>(value, "td3")?,
                None => Td3Config::default_for(env_id),
            };
            Ok(Box::new(Td3::with_device(config, env_id, seed, device)?))
        }
        "dqn" => {
            let config = match config {
                Some(value) => parse_config::<DqnConfig>(value, "dqn")?,
                None => DqnConfig::default_for(env_id),
            };
            Ok(Box::new(Dqn::with_device(config, env_id, seed, device)?))
        }
        "reinforce" => {
            let config = match config {
                Some(value) => parse_config::<ReinforceConfig>(value, "reinforce")?,
                None => ReinforceConfig::default(),
            };
            Ok(Box::new(Reinforce::new(config, env_id, seed)?))
        }
        "pg-igt" | "harpg" => {
            let name = if algo == "harpg" { "harpg" } else { "pg-igt" };
            let config = match config {
                Some(mut value) => {
                    // The method defaults to the learner's own (N-PG-IGT or N-HARPG).
                    if let Some(obj) = value.as_object_mut() {
                        obj.entry("method").or_insert_with(|| {
                            serde_json::json!(if name == "harpg" {
                                "n-harpg"
                            } else {
                                "n-pg-igt"
                            })
                        });
                    }
                    parse_config::<StochasticPgConfig>(value, name)?
                }
                None => StochasticPgConfig::with_method(if name == "harpg" {
                    PgMethod::NHarpg
                } else {
                    PgMethod::NPgIgt
                }),
            };
            config.validate_for(name)?;
            Ok(Box::new(StochasticPg::new(config, env_id, seed)?))
        }
        other => Err(RlError::UnknownAlgo {
            algo: other.to_string(),
            known: ALGOS.join(", "),
        }),
    }
}

/// Loads a learner saved by [`Learner::save`], dispatching on the `algo` key of `<stem>.json`.
pub fn load_learner(stem: &Path, device: Device) -> Result<Box<dyn Learner>> {
    #[derive(serde::Deserialize)]
    struct Header {
        algo: String,
    }
    let header: Header = kiln_tensor::load_checkpoint_config(stem)?;
    match header.algo.as_str() {
        "ppo" => Ok(Box::new(Ppo::load_with_device(stem, device)?)),
        "sac" => Ok(Box::new(Sac::load_with_device(stem, device)?)),
        "td3" => Ok(Box::new(Td3::load_with_device(stem, device)?)),
        "dqn" => Ok(Box::new(Dqn::load_with_device(stem, device)?)),
        "reinforce" => Ok(Box::new(Reinforce::load(stem)?)),
        "pg-igt" | "harpg" => Ok(Box::new(StochasticPg::load(stem)?)),
        other => Err(RlError::Checkpoint {
            path: stem.to_path_buf(),
            reason: format!(
                "saved by unknown learner `{other}` (known: {})",
                ALGOS.join(", ")
            ),
        }),
    }
}

/// Parses an algorithm's config from JSON; serde's message names an unknown or mistyped key.
/// Range checks are the config's own `validate`.
pub fn parse_config<C: DeserializeOwned>(
    value: serde_json::Value,
    algo: &'static str,
) -> Result<C> {
    serde_json::from_value(value).map_err(|source| RlError::ConfigValue { algo, source })
}

impl Learner for Ppo {
    fn algo(&self) -> &'static str {
        "ppo"
    }

    fn env_id(&self) -> &str {
        Ppo::env_id(self)
    }

    fn global_step(&self) -> u64 {
        Ppo::global_step(self)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config()).unwrap_or(serde_json::Value::Null)
    }

    fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()> {
        Ppo::learn(self, total_steps, callback).map(|_| ())
    }

    fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        Ppo::predict(self, obs, deterministic)
    }

    fn save(&self, stem: &Path) -> Result<()> {
        Ppo::save(self, stem)
    }

    fn evaluate(&mut self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        Ppo::evaluate(self, episodes, seed)
    }
}

/// The `Learner` impl of a learner whose inherent methods already have the trait's shape.
macro_rules! off_policy_learner {
    ($ty:ty, $name:literal) => {
        impl Learner for $ty {
            fn algo(&self) -> &'static str {
                $name
            }

            fn env_id(&self) -> &str {
                <$ty>::env_id(self)
            }

            fn global_step(&self) -> u64 {
                <$ty>::global_step(self)
            }

            fn config_json(&self) -> serde_json::Value {
                serde_json::to_value(self.config()).unwrap_or(serde_json::Value::Null)
            }

            fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()> {
                <$ty>::learn(self, total_steps, callback).map(|_| ())
            }

            fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
                <$ty>::predict(self, obs, deterministic)
            }

            fn save(&self, stem: &Path) -> Result<()> {
                <$ty>::save(self, stem)
            }

            fn evaluate(&mut self, episodes: usize, seed: u64) -> Result<Vec<f64>> {
                <$ty>::evaluate(self, episodes, seed)
            }
        }
    };
}

off_policy_learner!(Sac, "sac");
off_policy_learner!(Td3, "td3");
off_policy_learner!(Dqn, "dqn");
impl Learner for Reinforce {
    fn algo(&self) -> &'static str {
        "reinforce"
    }

    fn env_id(&self) -> &str {
        Reinforce::env_id(self)
    }

    fn global_step(&self) -> u64 {
        Reinforce::global_step(self)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config()).unwrap_or(serde_json::Value::Null)
    }

    fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()> {
        Reinforce::learn(self, total_steps, callback)
    }

    fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        Reinforce::predict(self, obs, deterministic)
    }

    fn save(&self, stem: &Path) -> Result<()> {
        Reinforce::save(self, stem)
    }
}

impl Learner for StochasticPg {
    fn algo(&self) -> &'static str {
        self.config().method.learner()
    }

    fn env_id(&self) -> &str {
        StochasticPg::env_id(self)
    }

    fn global_step(&self) -> u64 {
        StochasticPg::global_step(self)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config()).unwrap_or(serde_json::Value::Null)
    }

    fn learn(&mut self, total_steps: u64, callback: &mut dyn Callback) -> Result<()> {
        StochasticPg::learn(self, total_steps, callback)
    }

    fn predict(&mut self, obs: &[f64], deterministic: bool) -> Result<Action> {
        StochasticPg::predict(self, obs, deterministic)
    }

    fn save(&self, stem: &Path) -> Result<()> {
        StochasticPg::save(self, stem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::NoCallback;

    #[test]
    fn unknown_algo_lists_the_known_ones() {
        let err = make_learner("a2c", "CartPole-v1", 1, None, kiln_tensor::testing::cpu())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("a2c") && err.contains("ppo"), "{err}");
    }

    #[test]
    fn unknown_config_key_is_named() {
        let cfg = serde_json::json!({"learning_rat": 0.1});
        let err = make_learner(
            "ppo",
            "CartPole-v1",
            1,
            Some(cfg),
            kiln_tensor::testing::cpu(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("learning_rat"), "{err}");
    }

    #[test]
    fn out_of_range_config_value_is_named() {
        let cfg = serde_json::json!({"gamma": 1.5});
        let err = make_learner(
            "ppo",
            "CartPole-v1",
            1,
            Some(cfg),
            kiln_tensor::testing::cpu(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("gamma") && err.contains("1.5"), "{err}");
    }

    #[test]
    fn save_and_load_through_the_registry_predict_alike() {
        let cfg = serde_json::json!({"num_envs": 2, "num_steps": 16, "num_minibatches": 2,
                                     "update_epochs": 1, "hidden_sizes": [8]});
        let device = kiln_tensor::testing::cpu();
        let mut learner =
            make_learner("ppo", "CartPole-v1", 3, Some(cfg), device.clone()).expect("ppo");
        learner.learn(32, &mut NoCallback).expect("learn");
        let dir = tempfile::tempdir().expect("tempdir");
        let stem = dir.path().join("ckpt");
        learner.save(&stem).expect("save");
        let mut loaded = load_learner(&stem, device).expect("load");
        assert_eq!(loaded.algo(), "ppo");
        assert_eq!(loaded.global_step(), learner.global_step());
        let obs = [0.01, -0.02, 0.03, 0.04];
        for _ in 0..3 {
            assert_eq!(
                format!("{:?}", learner.predict(&obs, true).expect("predict")),
                format!("{:?}", loaded.predict(&obs, true).expect("predict"))
            );
        }
    }
}
