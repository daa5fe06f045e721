//! Support for the end-to-end tests (`tests/e2e/`) and the benchmarks (`bench/`): network
//! namespaces and sites built from them, and nmap as a reference scanner.

pub mod netns;
pub mod nmap;
