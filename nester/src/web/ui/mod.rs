//! The dashboard: server-rendered pages (templates in `dashboard/templates/`), one file per
//! page, reading the same queries as the API. Signing in (`login.rs`, `mfa.rs`), one's own
//! account, the admin pages (users, probes, enrollment tokens), and the pages of the dashboard; `rows.rs` holds what the pages
//! share, `chart.rs` draws the SVG charts. Parts marked `data-live` are refreshed in place by
//! `static/refresh.js`.

pub mod account;
pub mod admin;
pub mod alerts;
mod chart;
pub mod host;
pub mod login;
pub mod mfa;
pub mod overview;
pub mod probe;
pub mod report;
mod rows;
pub mod search;
pub mod ssh;
