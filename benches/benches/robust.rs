//! Robust value iteration throughput (Bellman sweeps per second) on
//! Garnet(500 states, 10 actions, branching 50, gamma 0.95) for the
//! (s,a)-rectangular L1, L-infinity and KL balls (radius 0.1) and the
//! s-rectangular L1 ball. One sweep applies the robust Bellman operator to
//! every state (rayon over states). The NumPy peer
//! `benches/peers/robust_vi_numpy.py` times the same (s,a)-rectangular sweeps.
//!
//! Run: `cargo bench -p kiln-benches --bench robust`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_envs::tabular::garnet;
use kiln_robust::{Distance, Rectangularity, UncertaintySet, robust_bellman_sweep};

fn sweeps(c: &mut Criterion) {
    let mdp = garnet(500, 10, 50, 0.95, 0).expect("garnet");
    // A realistic value vector: a few sweeps of plain VI from zero.
    let (v, _) = mdp.value_iteration(1e-3, 20);
    let mut group = c.benchmark_group("robust/sweep");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, d, rect) in [
        ("sa-l1", Distance::L1, Rectangularity::Sa),
        ("sa-linf", Distance::Linf, Rectangularity::Sa),
        ("sa-kl", Distance::Kl, Rectangularity::Sa),
        ("s-l1", Distance::L1, Rectangularity::S),
    ] {
        let set = UncertaintySet::new(d, 0.1, rect).expect("set");
        if rect == Rectangularity::S {
            group.sample_size(10);
        }
        group.bench_function(name, |b| {
            b.iter(|| black_box(robust_bellman_sweep(&mdp, &set, black_box(&v))))
        });
    }
    group.finish();
}

criterion_group!(benches, sweeps);
criterion_main!(benches);
