//! The Seahawks harvester: the agent at each franchise site.
//!
//! - [`scan`]: the scan engine (targets, port specs, TCP connect probes).
//! - [`report`]: a scan turned into a [`shared::Report`].
//! - [`state`]: the state directory (identity, sequence counter).
//! - [`uplink`]: the mTLS connection to the nester.
//! - [`agent`]: the daemon loop tying these together.
//! - [`config`], [`table`]: configuration and the human output of `harvester scan`.

pub mod agent;
pub mod config;
pub mod report;
pub mod scan;
pub mod state;
pub mod table;
pub mod uplink;

pub use agent::Agent;
pub use config::Config;
