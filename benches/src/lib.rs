//! Criterion benchmarks for Kiln; see `benches/`.
