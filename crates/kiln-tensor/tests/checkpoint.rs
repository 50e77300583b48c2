//! Checkpoint round trips and errors.

use burn::tensor::Tensor;
use kiln_tensor::testing::{cpu, to_vec};
use kiln_tensor::{MlpConfig, Seeds, load_checkpoint, load_checkpoint_config, save_checkpoint};

#[test]
fn round_trip_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = cpu();
    Seeds::new(9).seed_device(&d);
    let config = MlpConfig::new(vec![5, 32, 3]).with_layer_norm(true);
    let mlp = config.init(&d).unwrap();
    let stem = dir.path().join("nested/policy");
    save_checkpoint(&mlp, &config, &stem).unwrap();
    let cfg: MlpConfig = load_checkpoint_config(&stem).unwrap();
    assert_eq!(cfg.sizes, vec![5, 32, 3]);
    Seeds::new(10).seed_device(&d);
    let fresh = cfg.init(&d).unwrap();
    let x = Tensor::<2>::random([4, 5], burn::tensor::Distribution::Normal(0.0, 1.0), &d);
    assert_ne!(
        to_vec(fresh.forward(x.clone())),
        to_vec(mlp.forward(x.clone()))
    );
    let loaded = load_checkpoint(fresh, &stem).unwrap();
    assert_eq!(to_vec(loaded.forward(x.clone())), to_vec(mlp.forward(x)));
    // Atomic writes leave no temporary files behind.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn wrong_shape_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = cpu();
    let config = MlpConfig::new(vec![5, 32, 3]);
    save_checkpoint(&config.init(&d).unwrap(), &config, &dir.path().join("p")).unwrap();
    let other = MlpConfig::new(vec![5, 16, 3]).init(&d).unwrap();
    let e = load_checkpoint(other, &dir.path().join("p"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layers.0.weight") || e.contains("layers.0"),
        "{e}"
    );
    assert!(e.contains("p.safetensors"), "{e}");
}

#[test]
fn missing_and_corrupt_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = cpu();
    let mlp = MlpConfig::new(vec![2, 2]).init(&d).unwrap();
    let e = load_checkpoint(mlp.clone(), &dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.safetensors"), "{e}");
    std::fs::write(
        dir.path().join("bad.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let e = load_checkpoint(mlp, &dir.path().join("bad"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.safetensors"), "{e}");
}
