//! The bans page: who is refused at the accept loop and why; lifting a ban.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiPath};
use crate::state::AppState;
use crate::web::view::{self, Nav};

struct BanRow {
    prefix: String,
    rule: String,
    reason: String,
    since: String,
    until: String,
    offences: u32,
}

#[derive(Template)]
#[template(path = "bans.html")]
struct BansPage {
    nav: Option<Nav>,
    csrf: String,
    bans: Vec<BanRow>,
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let bans = state
        .db
        .active_bans()
        .await?
        .into_iter()
        .map(|b| BanRow {
            since: rfc3339(b.created_at),
            until: b
                .expires_at
                .map_or_else(|| "lifted by hand".into(), rfc3339),
            prefix: b.prefix,
            rule: b.rule,
            reason: b.reason,
            offences: b.offences,
        })
        .collect();
    view::ok(&BansPage {
        nav: Nav::of(&caller),
        csrf: caller.csrf().to_string(),
        bans,
    })
}

/// Lifts the ban on the prefix `{a}/{len}` (the path holds it in two parts).
pub async fn lift(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((addr, len)): ApiPath<(String, u8)>,
) -> Result<Response, ApiError> {
    let prefix: ipnet::IpNet = format!("{addr}/{len}")
        .parse()
        .map_err(|_| ApiError::not_found(format!("{addr}/{len} is not a network")))?;
    if !state
        .threats
        .unban(caller.actor(), prefix)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found(format!("{prefix} is not banned")));
    }
    Ok(Redirect::to("/admin/bans").into_response())
}
