//! One's own account: sessions (see, end), password, API tokens.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::login::{too_many, wait_message};
use crate::auth::attempt::Attempt;
use crate::auth::credentials;
use crate::auth::session::{SESSION_COOKIE, clear_cookie};
use crate::auth::{Caller, SSH_USERS, TOKEN_HOLDERS};
use crate::clock::rfc3339;
use crate::db::Role;
use crate::db::{LoginOutcome, Scope, UserChange};
use crate::error::{ApiError, ApiForm, ApiPath};
use crate::ops::api_tokens;
use crate::state::AppState;
use crate::web::view::{self, Nav, Notice};

struct SessionView {
    id: i64,
    created: String,
    seen: String,
    ip: String,
    user_agent: String,
    current: bool,
}

struct TokenView {
    id: i64,
    name: String,
    scope: &'static str,
    created: String,
    expires: String,
    last_used: String,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Option<Nav>,
    username: String,
    role: Role,
    csrf: String,
    sessions: Vec<SessionView>,
    mfa: bool,
    token_holder: bool,
    /// May have SSH certificates.
    ssh: bool,
    tokens: Vec<TokenView>,
    message: Option<String>,
    error: Option<String>,
}

async fn account_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let current = caller.session().map(|s| s.session_id);
    let sessions = state
        .db
        .user_sessions(caller.user_id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.session_id,
            created: rfc3339(s.created_at),
            seen: rfc3339(s.seen_at),
            ip: s.ip,
            user_agent: s.user_agent,
            current: Some(s.session_id) == current,
        })
        .collect();
    let token_holder = TOKEN_HOLDERS.contains(&caller.role);
    let tokens = if token_holder {
        state
            .db
            .api_tokens(Some(caller.user_id))
            .await?
            .into_iter()
            .map(|t| TokenView {
                id: t.token_id,
                name: t.name,
                scope: t.scope.as_str(),
                created: rfc3339(t.created_at),
                expires: rfc3339(t.expires_at),
                last_used: t.last_used_at.map_or_else(|| "never".into(), rfc3339),
                revoked: t.revoked,
            })
            .collect()
    } else {
        Vec::new()
    };
    view::render(
        status,
        &AccountPage {
            nav: Nav::of(caller),
            username: caller.username.clone(),
            role: caller.role,
            csrf: caller.csrf().to_string(),
            sessions,
            mfa: state.db.totp(caller.user_id).await?.is_some(),
            token_holder,
            ssh: SSH_USERS.contains(&caller.role),
            tokens,
            message: None,
            error,
        },
    )
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    account_page(&state, &caller, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

/// A new password: the current one first (throttled and recorded like a sign-in, so a
/// stolen session cannot guess it); ends every session of the user, this one too.
pub async fn password(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
    ApiForm(form): ApiForm<PasswordForm>,
) -> Result<Response, ApiError> {
    let refuse = |status, e: String| account_page(&state, &caller, status, Some(e));
    let attempt = Attempt::new(&caller.username, &parts);
    if let Some(secs) = attempt.throttled(&state).await? {
        let page = refuse(StatusCode::TOO_MANY_REQUESTS, wait_message(secs)).await;
        return too_many(page, secs);
    }
    let stored = state.db.login_user(caller.username.clone()).await?;
    let right = match stored {
        Some(u) => credentials::verify_password(form.current, u.password_hash).await,
        None => false,
    };
    if !right {
        attempt.record(&state, LoginOutcome::BadPassword).await?;
        return refuse(
            StatusCode::BAD_REQUEST,
            "The current password is wrong.".into(),
        )
        .await;
    }
    if form.new != form.again {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The two new passwords differ.".into(),
        )
        .await;
    }
    if let Err(e) = credentials::check_password(&form.new) {
        return refuse(StatusCode::BAD_REQUEST, format!("{e}.")).await;
    }
    let hash = credentials::hash_password(form.new)
        .await
        .map_err(ApiError::internal)?;
    if state
        .db
        .set_password(caller.actor(), caller.username.clone(), hash)
        .await?
        != UserChange::Done
    {
        return Err(ApiError::internal("the signed-in user vanished"));
    }
    tracing::info!(username = %caller.username, "password changed; all sessions ended");
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    Ok(response)
}

pub async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(session_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    if !state
        .db
        .end_session(
            caller.actor(),
            Some("session.end"),
            caller.user_id,
            session_id,
        )
        .await?
    {
        return Err(ApiError::not_found(format!(
            "you have no session {session_id}"
        )));
    }
    Ok(Redirect::to("/account").into_response())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    scope: Option<String>,
    days: Option<u32>,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiForm(form): ApiForm<TokenForm>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_form", m);
    let scope: Scope = form
        .scope
        .as_deref()
        .unwrap_or("read")
        .parse()
        .map_err(bad)?;
    let days = form.days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(bad("a token is valid for 1 to 365 days".into()));
    }
    let ttl = time::Duration::days(days.into());
    let name = form.name.trim();
    let token =
        api_tokens::create(&state.db, caller.actor(), caller.user_id, name, scope, ttl).await?;
    view::ok(&Notice {
        nav: Nav::of(&caller),
        title: "API token created".into(),
        message: format!("Token “{name}” ({}, {days} days).", scope.as_str()),
        secrets: vec![token],
        next: "/account".into(),
    })
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    api_tokens::revoke(&state.db, caller.actor(), token_id, Some(caller.user_id))
        .await
        .map_err(|e| match e {
            api_tokens::TokenError::NotFound(_) => {
                ApiError::not_found(format!("you have no token {token_id}"))
            }
            other => other.into(),
        })?;
    Ok(Redirect::to("/account").into_response())
}
