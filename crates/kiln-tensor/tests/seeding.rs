//! One seed gives the same numbers on a backend: parameter init, device sampling and the
//! named host streams.

use burn::tensor::{Distribution, Tensor};
use kiln_tensor::hvp::flatten_params;
use kiln_tensor::testing::{cpu, to_vec};
use kiln_tensor::{EnsembleMlpConfig, MlpConfig, MlpInit, Seeds};
use rand::RngExt;

fn init_and_sample(seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>, u64) {
    let d = cpu();
    let seeds = Seeds::new(seed);
    seeds.seed_device(&d);
    let mlp = MlpConfig::new(vec![6, 32, 2])
        .with_init(MlpInit::Orthogonal { hidden_gain: 1.0 })
        .init(&d)
        .unwrap();
    let ens = EnsembleMlpConfig::new(2, vec![6, 8, 1]).init(&d).unwrap();
    let noise = to_vec(Tensor::<2>::random(
        [4, 3],
        Distribution::Normal(0.0, 1.0),
        &d,
    ));
    let host: u64 = seeds.stream("minibatch").random();
    (flatten_params(&mlp), flatten_params(&ens), noise, host)
}

#[test]
fn same_seed_same_numbers_different_seed_different_numbers() {
    let a = init_and_sample(123);
    let b = init_and_sample(123);
    let c = init_and_sample(124);
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
    assert_ne!(a.1, c.1);
    assert_ne!(a.2, c.2);
    assert_ne!(a.3, c.3);
}
