//! `kiln info`.

use anyhow::Result;
use kiln_tensor::{Backend, compiled_backends, select_device};
use serde_json::json;

pub fn run(as_json: bool) -> Result<()> {
    let compiled: Vec<&str> = compiled_backends().iter().map(|b| b.name()).collect();
    let env = std::env::var(kiln_tensor::DEVICE_ENV).ok();
    let choice = select_device();
    if as_json {
        let (device, reason, error) = match &choice {
            Ok(c) => (Some(c.backend.name()), Some(c.reason.clone()), None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        let gpu = Backend::Wgpu.is_compiled() && kiln_tensor::backend::wgpu_gpu_present();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "kiln_version": env!("CARGO_PKG_VERSION"),
                "compiled_backends": compiled,
                "kiln_device_env": env,
                "backend": device,
                "reason": reason,
                "error": error,
                "gpu_adapter": gpu,
            }))?
        );
        return choice.map(|_| ()).map_err(Into::into);
    }
    println!("kiln {}", env!("CARGO_PKG_VERSION"));
    println!("compiled backends: {}", compiled.join(", "));
    match &env {
        Some(v) => println!("{}: {v}", kiln_tensor::DEVICE_ENV),
        None => println!("{}: (unset)", kiln_tensor::DEVICE_ENV),
    }
    let choice = choice?;
    println!("device: {} ({:?})", choice.backend, choice.device);
    println!("why: {}", choice.reason);
    Ok(())
}
