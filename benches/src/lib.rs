//! Benchmarks live in benches/ and scripts/.
