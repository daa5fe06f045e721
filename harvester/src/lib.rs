//! The Seahawks harvester: the agent at each franchise site.
//!
//! - [`scan`]: the scan engine (targets, port specs, TCP connect probes, banners).
//! - [`wan`]: WAN latency rounds (ICMP, TCP connect fallback).
//! - [`report`]: a scan turned into a [`shared::Report`].
//! - [`enroll`]: joining a nester with a token, and certificate renewal.
//! - [`state`]: the state directory (identity, counters); [`spool`]: reports awaiting delivery.
//! - [`uplink`], [`tls`]: the HTTPS connection to the nester; [`backoff`]: retry timing.
//! - [`agent`]: a cycle's steps and the daemon loop tying these together; [`status`]:
//!   `harvester status`.
//! - [`config`], [`table`]: configuration and the human output of `harvester scan` and `wan`.
//! - [`cli`]: the `harvester` command line.

pub mod agent;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod metrics;
pub mod report;
pub mod scan;
pub mod spool;
pub mod ssh_host;
pub mod ssh_trust;
pub mod state;
pub mod status;
pub mod table;
pub mod tls;
pub mod uplink;
pub mod wan;

pub use agent::Agent;
pub use config::Config;
