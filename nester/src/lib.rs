//! The Seahawks nester: the central server. Layers, each using only those below it (checked
//! by `tests/layout.py`):
//!
//! - [`cli`]: the `nester` command line, one file per command family (and `demo`).
//! - [`server`]: `nester serve`, every listener and the [`jobs`] behind one shutdown; each
//!   job made by [`job`].
//! - [`ingest`]: what harvesters call (reports, enrollment, renewal); [`web`]: the dashboard
//!   (`web::ui`) and the client API (`web::api`).
//! - [`ops`]: the operations and reads the API, the pages and the CLI share, transport-neutral.
//! - [`alerts`]: the monitoring rules, evaluated beside ingest.
//! - [`auth`]: who may call what on the web listener (sessions, TOTP, CSRF, API tokens,
//!   throttling, credentials, secrets).
//! - [`net`]: the accept loop and TLS configs every listener shares.
//! - [`state`], [`error`]: what both routers share, and the API error shape.
//! - [`backup`]: backups, local and pushed over SFTP.
//! - [`db`]: the only place that runs SQL. [`pki`]: the nester's CA. [`ssh`]: SSH host keys.
//! - [`config`], [`datadir`] (the only place that names files in the data directory),
//!   [`clock`] (the one source of "now", which tests move).

// Nothing on a request path may panic on a `None` or an `Err` unannounced: `unwrap` and
// `expect` are refused outside tests, except where an `allow` gives the reason it cannot fail.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod db;
pub mod error;
pub mod ingest;
pub mod job;
pub mod jobs;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod ops;
pub mod pki;
pub mod server;
pub mod ssh;
pub mod ssh_ca;
pub mod state;
pub mod threat;
pub mod web;
