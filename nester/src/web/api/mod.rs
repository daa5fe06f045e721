//! The client API (`/api/v1/`), one file per resource. Every answer is JSON (or the signed
//! bytes of a report), described in `openapi.rs`.

pub mod alerts;
pub mod audit;
pub mod bans;
pub mod enrollment;
pub mod hosts;
pub mod probes;
pub mod reports;
pub mod silences;
pub mod sites;
pub mod ssh;
pub mod ssh_revoked_keys;
