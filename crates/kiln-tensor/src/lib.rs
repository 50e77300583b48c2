//! # kiln-tensor
//!
//! Kiln's tensor and autodiff glue over [burn](https://burn.dev) 0.22: the one place that
//! knows about backends, devices and seeds, and the building blocks every learner shares.
//!
//! - **Backends** ([`backend`]): chosen at build time by Cargo features (`flex`, the default
//!   pure-Rust CPU backend; `ndarray`; `wgpu` for GPUs) and at run time by
//!   `KILN_DEVICE=flex|ndarray|wgpu`; otherwise a GPU is picked before a CPU.
//! - **Seeding** ([`Seeds`]): one `u64` gives reproducible numbers on a backend.
//! - **Networks**: [`Mlp`], [`EnsembleMlp`] (N critics in one batched call),
//!   [`sinusoidal_embedding`].
//! - **Distributions**: [`DiagGaussian`], [`TanhGaussian`], [`Categorical`] (with masks).
//! - **Optimization**: [`AdamSettings`], [`clip_grad_norm`], [`polyak_update`],
//!   [`LrSchedule`]; Hessian-vector products by central differences ([`hvp`]).
//! - **Host engine** ([`host`]): small MLPs on plain `f32` slices with a hand-written
//!   backward pass, Adam and clipping that match the burn path, for CPU training loops
//!   where burn's per-op overhead dominates.
//! - **Checkpoints** ([`checkpoint`]): safetensors weights + JSON config, written atomically.
//! - **Step Law** ([`step_law`]): optimal LR and batch size from "Predictable Scale: Part I".
//!
//! ```
//! use kiln_tensor::{MlpConfig, Seeds, select_device};
//! use burn::tensor::Tensor;
//!
//! let choice = select_device().unwrap();
//! Seeds::new(42).seed_device(&choice.device);
//! let mlp = MlpConfig::new(vec![4, 64, 2]).init(&choice.device).unwrap();
//! let y = mlp.forward(Tensor::<2>::zeros([8, 4], &choice.device));
//! assert_eq!(y.dims(), [8, 2]);
//! ```

#![warn(missing_docs)]

pub use burn;

pub mod backend;
pub mod checkpoint;
pub mod distributions;
mod embedding;
mod ensemble;
mod error;
pub mod host;
pub mod hvp;
mod mlp;
pub mod optim;
mod seed;
pub mod step_law;
#[doc(hidden)]
pub mod testing;

pub use backend::{
    Backend, DEVICE_ENV, DeviceChoice, autodiff_device, compiled_backends, device, is_cpu_device,
    select_device,
};
pub use checkpoint::{load_checkpoint, load_checkpoint_config, save_checkpoint};
pub use distributions::{Categorical, DiagGaussian, TanhGaussian, TanhSample};
pub use embedding::sinusoidal_embedding;
pub use ensemble::{EnsembleMlp, EnsembleMlpConfig};
pub use error::{Result, TensorError};
pub use hvp::{HVP_STEP, hvp_central, module_hvp};
pub use mlp::{Activation, Mlp, MlpConfig, MlpInit, fast_tanh};
pub use optim::{AdamSettings, LrSchedule, clip_grad_norm, grad_norm, materialize, polyak_update};
pub use seed::{Seeds, splitmix64};
pub use step_law::{StepLaw, non_embedding_params, step_law};
