//! The backups page: the last good and the last verified backup, each backup pushed with its
//! size and what its last verification found, and why backups fail when they do.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use crate::auth::Caller;
use crate::backup::schedule::FAILING;
use crate::clock::rfc3339_ms;
use crate::db::alerts::{AlertQuery, AlertState};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::view::{self, Nav};

struct BackupRow {
    name: String,
    bytes: i64,
    pushed: String,
    verified: String,
    ok: bool,
}

#[derive(Template)]
#[template(path = "backups.html")]
struct BackupsPage {
    nav: Option<Nav>,
    last_good: String,
    last_verified: String,
    failing: Option<String>,
    backups: Vec<BackupRow>,
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let records = state.db.backups().await?;
    let last_good = records
        .iter()
        .find(|b| b.verify_error.is_none())
        .map_or_else(|| "never".to_string(), |b| rfc3339_ms(b.pushed_ms));
    let last_verified = records
        .iter()
        .filter(|b| b.verify_error.is_none())
        .filter_map(|b| b.verified_ms)
        .max()
        .map_or_else(|| "never".to_string(), rfc3339_ms);
    let failing = state
        .db
        .alerts(AlertQuery {
            rule: Some(FAILING.into()),
            limit: 1,
            ..AlertQuery::default()
        })
        .await?
        .into_iter()
        .find(|a| a.state != AlertState::Resolved)
        .map(|a| a.summary);
    let backups = records
        .into_iter()
        .map(|b| BackupRow {
            ok: b.verified_ms.is_some() && b.verify_error.is_none(),
            verified: match (b.verified_ms, &b.verify_error) {
                (Some(at), None) => format!("ok, {}", rfc3339_ms(at)),
                (Some(at), Some(e)) => format!("FAILED {}: {e}", rfc3339_ms(at)),
                (None, _) => "not yet".into(),
            },
            pushed: rfc3339_ms(b.pushed_ms),
            bytes: b.bytes,
            name: b.name,
        })
        .collect();
    view::ok(&BackupsPage {
        nav: Nav::of(&caller),
        last_good,
        last_verified,
        failing,
        backups,
    })
}
