//! Tensor-glue hot paths: MLP forward, a full Adam update at SAC-actor size, and matmul
//! throughput (the FLOP floor later learners are measured against).
//!
//! `cargo xtask bench -- tensor` (add `--features ndarray` to `cargo bench -p kiln-benches`
//! to include the ndarray backend). Matmul throughput is reported by criterion as
//! "elem/s" where one element is one floating-point operation, i.e. Gelem/s = GFLOP/s.

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kiln_tensor::{AdamSettings, Backend, MlpConfig, Seeds, burn, compiled_backends};

fn cpu_backends() -> Vec<(Backend, Device)> {
    compiled_backends()
        .into_iter()
        .filter(|b| *b != Backend::Wgpu || kiln_tensor::backend::wgpu_adapter_present())
        .filter_map(|b| b.device().ok().map(|d| (b, d)))
        .collect()
}

/// The SAC actor of the reference papers: 17 observations, two hidden layers of 256, 6 outputs
/// (mean and log-std heads of a 3-D action would be 6 wide as well).
const SIZES: [usize; 4] = [17, 256, 256, 6];

fn mlp_forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlp_forward_17-256-256-6");
    for (backend, device) in cpu_backends() {
        Seeds::new(0).seed_device(&device);
        let mlp = MlpConfig::new(SIZES.to_vec()).init(&device).unwrap();
        for batch in [1usize, 256] {
            let x = Tensor::<2>::random([batch, 17], Distribution::Normal(0.0, 1.0), &device);
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_with_input(BenchmarkId::new(backend.name(), batch), &batch, |b, _| {
                b.iter(|| {
                    let y = mlp.forward(x.clone());
                    y.into_data()
                })
            });
        }
    }
    g.finish();
}

fn adam_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("adam_update_17-256-256-6_batch256");
    for (backend, device) in cpu_backends() {
        let device = device.autodiff();
        Seeds::new(0).seed_device(&device);
        let mut mlp = MlpConfig::new(SIZES.to_vec()).init(&device).unwrap();
        let mut optim = AdamSettings::default().build().unwrap();
        let x = Tensor::<2>::random([256, 17], Distribution::Normal(0.0, 1.0), &device);
        let t = Tensor::<2>::random([256, 6], Distribution::Normal(0.0, 1.0), &device);
        g.throughput(Throughput::Elements(1));
        g.bench_function(backend.name(), |b| {
            b.iter(|| {
                let loss = (mlp.forward(x.clone()) - t.clone()).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &mlp);
                mlp = optim.step(3e-4, mlp.clone(), grads);
                loss.into_data()
            })
        });
    }
    g.finish();
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    g.sample_size(20);
    for (backend, device) in cpu_backends() {
        for n in [256usize, 1024] {
            let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
            let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &device);
            g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
            g.bench_with_input(BenchmarkId::new(backend.name(), n), &n, |bench, _| {
                bench.iter(|| a.clone().matmul(b.clone()).into_data())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, mlp_forward, adam_update, matmul);
criterion_main!(benches);
