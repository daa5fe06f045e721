//! The probes page: every enrolled probe with its standing, and revoking one (after a
//! confirmation page, so a stray click revokes nothing).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiPath};
use crate::state::AppState;
use crate::web::ui::rows::{self, ProbeRow};
use crate::web::view::{self, Nav};

#[derive(Template)]
#[template(path = "admin_probes.html")]
struct ProbesPage {
    nav: Option<Nav>,
    probes: Vec<ProbeRow>,
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let probes = state.db.probes(None, now).await?;
    view::ok(&ProbesPage {
        nav: Nav::of(&caller),
        probes: probes.into_iter().map(|p| rows::row(p, now)).collect(),
    })
}

#[derive(Template)]
#[template(path = "revoke_probe.html")]
struct ConfirmPage {
    nav: Option<Nav>,
    csrf: String,
    probe: ProbeRow,
}

/// "Revoke this probe?", with what it is and what revoking does.
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(probe_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let probe = state
        .db
        .probes(Some(probe_id), now)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("no probe {probe_id}")))?;
    view::ok(&ConfirmPage {
        nav: Nav::of(&caller),
        csrf: caller.csrf().to_string(),
        probe: rows::row(probe, now),
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(probe_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    crate::ops::probes::revoke(&state.db, caller.actor(), probe_id).await?;
    Ok(Redirect::to("/admin/probes").into_response())
}
