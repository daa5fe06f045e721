//! End-to-end tests: real nester listeners on loopback ports, real TLS with certificates from
//! a real CA, real SQLite files, real harvesters. One test binary, one module per area.

mod api;
mod client;
mod harness;
mod interop;
mod sessions;
mod sftp;
mod wait;
mod webdriver;

mod access_log;
mod access_matrix;
mod admin;
mod alert_rules;
mod audit;
mod backup;
mod backup_failures;
mod backup_sftp;
mod bans;
mod browser;
mod browser_admin;
mod ca_rotation;
mod certificates;
mod cli;
mod crash;
mod delivery;
mod deploy;
mod durability;
mod enrollment;
mod history;
mod ingest_refusals;
mod jose_interop;
mod metrics;
mod notifications;
mod pipe;
mod process;
mod retention;
mod scan_site;
mod security_alerts;
mod shutdown;
mod ssh;
mod users;
mod wan_delay;
mod web_auth;
