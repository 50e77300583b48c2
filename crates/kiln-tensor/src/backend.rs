//! Backend choice: which burn backend runs Kiln's tensors.
//!
//! Backends are compiled in by Cargo features (`flex`, the default pure-Rust CPU backend;
//! `ndarray`, kept for comparison though burn deprecates it; `wgpu`, for GPUs). At run time
//! [`select_device`] honours `KILN_DEVICE=flex|ndarray|wgpu` and otherwise picks a GPU before
//! a CPU.

use std::fmt;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TensorError};

/// Environment variable that overrides the automatic device choice.
pub const DEVICE_ENV: &str = "KILN_DEVICE";

/// A burn backend Kiln knows how to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's pure-Rust CPU backend (default).
    Flex,
    /// burn's deprecated `ndarray` CPU backend.
    NdArray,
    /// GPU through wgpu (Vulkan, Metal, DX12 or WebGPU).
    Wgpu,
}

impl Backend {
    /// All backends, in Kiln's order of preference when no GPU is present.
    pub const ALL: [Backend; 3] = [Backend::Wgpu, Backend::Flex, Backend::NdArray];

    /// The feature / `KILN_DEVICE` name of this backend.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Whether this backend was compiled into this build.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::NdArray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// Parses a `KILN_DEVICE` value.
    pub fn parse(value: &str) -> Result<Backend> {
        match value.trim().to_ascii_lowercase().as_str() {
            "flex" => Ok(Backend::Flex),
            "ndarray" => Ok(Backend::NdArray),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            _ => Err(TensorError::UnknownBackend {
                value: value.to_string(),
            }),
        }
    }

    /// A device of this backend, without autodiff. Fails when the backend is not compiled in.
    pub fn device(self) -> Result<Device> {
        if !self.is_compiled() {
            return Err(not_compiled(self));
        }
        Ok(match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // kept on purpose: the design card names ndarray.
            Backend::NdArray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[allow(unreachable_patterns)]
            _ => return Err(not_compiled(self)),
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn not_compiled(requested: Backend) -> TensorError {
    TensorError::BackendNotCompiled {
        requested: requested.name().to_string(),
        compiled: compiled_backends()
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The backends compiled into this build, in order of preference.
pub fn compiled_backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_compiled())
        .collect()
}

/// Whether `device` (with or without autodiff) runs on the CPU: a `flex` or `ndarray`
/// device.
pub fn is_cpu_device(device: &Device) -> bool {
    let plain = device.clone().inner();
    [Backend::Flex, Backend::NdArray]
        .into_iter()
        .filter_map(|b| b.device().ok())
        .any(|d| d == plain)
}

/// The device Kiln will run on, and why.
#[derive(Debug, Clone)]
pub struct DeviceChoice {
    /// The backend chosen.
    pub backend: Backend,
    /// The burn device (without autodiff; see [`DeviceChoice::autodiff`]).
    pub device: Device,
    /// A one-line human explanation of the choice.
    pub reason: String,
}

impl DeviceChoice {
    /// The same device with autodiff enabled, for training.
    pub fn autodiff(&self) -> Device {
        self.device.clone().autodiff()
    }
}

/// Chooses the device: `KILN_DEVICE` when set, otherwise a GPU (wgpu with a hardware adapter)
/// before a CPU (`flex`, then `ndarray`).
pub fn select_device() -> Result<DeviceChoice> {
    select_device_from(std::env::var(DEVICE_ENV).ok().as_deref())
}

/// [`select_device`] with the value of `KILN_DEVICE` given explicitly (`None`: unset).
pub fn select_device_from(kiln_device: Option<&str>) -> Result<DeviceChoice> {
    if let Some(value) = kiln_device.filter(|v| !v.trim().is_empty()) {
        let backend = Backend::parse(value)?;
        let device = backend.device()?;
        if backend == Backend::Wgpu && !wgpu_adapter_present() {
            return Err(TensorError::NoWgpuAdapter {
                source_of_request: format!("{DEVICE_ENV}={value}"),
            });
        }
        return Ok(DeviceChoice {
            backend,
            device,
            reason: format!("{DEVICE_ENV}={value}"),
        });
    }
    if Backend::Wgpu.is_compiled() && wgpu_gpu_present() {
        return Ok(DeviceChoice {
            backend: Backend::Wgpu,
            device: Backend::Wgpu.device()?,
            reason: "a GPU adapter was found and the wgpu backend is compiled in".into(),
        });
    }
    for backend in [Backend::Flex, Backend::NdArray] {
        if backend.is_compiled() {
            let why = if Backend::Wgpu.is_compiled() {
                "wgpu is compiled in but no hardware GPU adapter was found; using the CPU"
            } else if backend == Backend::Flex {
                "default CPU backend (no GPU backend compiled in)"
            } else {
                "the only CPU backend compiled in"
            };
            return Ok(DeviceChoice {
                backend,
                device: backend.device()?,
                reason: why.into(),
            });
        }
    }
    // Only wgpu compiled, and no hardware GPU: a software adapter is still better than nothing.
    if wgpu_adapter_present() {
        return Ok(DeviceChoice {
            backend: Backend::Wgpu,
            device: Backend::Wgpu.device()?,
            reason: "only wgpu is compiled in; using its (software) adapter".into(),
        });
    }
    Err(TensorError::NoWgpuAdapter {
        source_of_request: "the automatic device choice (no CPU backend compiled in)".into(),
    })
}

/// The device to run on (see [`select_device`]), without autodiff.
pub fn device() -> Result<Device> {
    Ok(select_device()?.device)
}

/// The device to train on: [`device`] with autodiff enabled.
pub fn autodiff_device() -> Result<Device> {
    Ok(select_device()?.autodiff())
}

/// Whether wgpu can see any adapter at all (hardware or software such as Mesa's lavapipe).
pub fn wgpu_adapter_present() -> bool {
    wgpu_adapters().iter().any(|_| true)
}

/// Whether wgpu can see a hardware (discrete, integrated or virtual) GPU adapter.
pub fn wgpu_gpu_present() -> bool {
    wgpu_adapters().iter().any(|kind| *kind != AdapterKind::Cpu)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // variants are only built with the `wgpu` feature
enum AdapterKind {
    Gpu,
    Cpu,
}

#[cfg(feature = "wgpu")]
fn wgpu_adapters() -> Vec<AdapterKind> {
    use std::sync::OnceLock;
    static ADAPTERS: OnceLock<Vec<AdapterKind>> = OnceLock::new();
    ADAPTERS
        .get_or_init(|| {
            // Listing adapters can panic inside the driver stack on machines without Vulkan;
            // treat that as "no adapter" rather than taking the program down.
            std::panic::catch_unwind(|| {
                burn::tensor::Device::enumerate(burn::tensor::DeviceType::Wgpu)
                    .into_iter()
                    .map(|d| {
                        if format!("{d:?}").contains("Cpu") {
                            AdapterKind::Cpu
                        } else {
                            AdapterKind::Gpu
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
        })
        .clone()
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_adapters() -> Vec<AdapterKind> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(Backend::parse("flex").unwrap(), Backend::Flex);
        assert_eq!(Backend::parse(" NDARRAY ").unwrap(), Backend::NdArray);
        assert_eq!(Backend::parse("wgpu").unwrap(), Backend::Wgpu);
        let e = Backend::parse("cuda").unwrap_err().to_string();
        assert!(e.contains("cuda") && e.contains("flex"), "{e}");
    }

    #[test]
    fn unset_picks_a_compiled_backend() {
        let choice = select_device_from(None).unwrap();
        assert!(choice.backend.is_compiled());
        assert!(!choice.reason.is_empty());
    }

    #[test]
    fn asking_for_a_missing_backend_names_the_compiled_ones() {
        for b in Backend::ALL {
            if !b.is_compiled() {
                let e = select_device_from(Some(b.name())).unwrap_err().to_string();
                assert!(e.contains(b.name()), "{e}");
                for c in compiled_backends() {
                    assert!(e.contains(c.name()), "{e}");
                }
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn explicit_flex() {
        let c = select_device_from(Some("flex")).unwrap();
        assert_eq!(c.backend, Backend::Flex);
        assert!(c.autodiff().is_autodiff());
    }
}
