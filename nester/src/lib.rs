//! The Seahawks nester: the central server.
//!
//! - [`server`]: `nester serve`, both listeners behind one shutdown.
//! - [`listener`]: the TLS accept loop (handshake timeout, peer identity to handlers).
//! - [`ingest`]: report ingest; [`enroll`]: enrollment and renewal; [`web`]: dashboard and API.
//! - [`db`]: the only place that runs SQL.
//! - [`pki`], [`tls`], [`datadir`]: the nester CA, rustls configs, the data directory layout.
//! - [`commands`], [`demo`]: `init`, tokens, probe revocation, and `demo`.
//! - [`auth`]: who may call what on the web listener (sessions, TOTP, CSRF, API tokens,
//!   throttling); [`users`]: roles and passwords; [`clock`]: the time tests can move.
//! - [`config`], [`error`], [`state`]: configuration, the API error shape, the app state.

pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod datadir;
pub mod db;
pub mod demo;
pub mod enroll;
pub mod error;
pub mod ingest;
pub mod listener;
pub mod pki;
pub mod server;
pub mod state;
pub mod tls;
pub mod users;
pub mod web;

/// Completes on Ctrl-C or SIGTERM (what systemd sends).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
