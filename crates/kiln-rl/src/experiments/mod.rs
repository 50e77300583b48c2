//! Paper reproductions in miniature whose learners live in this crate; `kiln repro <row>` calls
//! them and writes their tables and plots.

pub mod fishery;
pub mod stochastic_pg;
