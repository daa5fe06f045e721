//! Support for the end-to-end tests (`tests/e2e/`) and the benchmarks (`bench/`): network
//! namespaces and sites built from them, fake services to scan, and nmap as a reference
//! scanner, and synthetic reports.

pub mod cpu;
pub mod fleet;
pub mod netns;
pub mod nmap;
pub mod peer;
pub mod services;
pub mod sshd;
pub mod synthetic;
pub mod tmpfs;
