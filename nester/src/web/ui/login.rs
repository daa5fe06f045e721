//! Signing in (password, then a TOTP or recovery code when the user has TOTP) and out.
//!
//! Unknown user and wrong password get the same page, status and timing (a decoy hash is
//! verified for unknown names). Every attempt is recorded with name, IP and user agent, and
//! throttled per account and per IP before any password is checked.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::attempt::{self, Attempt};
use crate::auth::credentials;
use crate::auth::session::{LOGIN_COOKIE, SESSION_COOKIE, clear_cookie, cookie, set_cookie};
use crate::auth::{Caller, csrf, secret};
use crate::db::Role;
use crate::db::{LoginOutcome, NewSession, Stage};
use crate::error::{ApiError, ApiForm};
use crate::state::AppState;
use crate::web::view::{self, Nav};

/// The one answer to a wrong user name or password.
pub const WRONG_CREDENTIALS: &str = "Wrong user name or password.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
}

/// The sign-in form's token: the one in the browser's cookie if it has one, else a new one.
fn login_token(headers: &HeaderMap) -> Result<String, ApiError> {
    match cookie(headers, LOGIN_COOKIE) {
        Some(t) if t.len() == 43 => Ok(t.to_string()),
        _ => secret::token().map_err(ApiError::internal),
    }
}

fn login_page(status: StatusCode, csrf: String, error: Option<&str>) -> Result<Response, ApiError> {
    let cookie = set_cookie(LOGIN_COOKIE, &csrf);
    let page = LoginPage {
        nav: None,
        csrf,
        error: error.map(str::to_string),
    };
    let mut response = view::render(status, &page)?;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn page(headers: HeaderMap) -> Result<Response, ApiError> {
    login_page(StatusCode::OK, login_token(&headers)?, None)
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub(super) fn too_many(page: Result<Response, ApiError>, secs: u64) -> Result<Response, ApiError> {
    let mut response = page?;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Ok(response)
}

pub(super) fn wait_message(secs: u64) -> String {
    format!("Too many failed attempts. Try again in {secs} s.")
}

pub async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    ApiForm(form): ApiForm<Credentials>,
) -> Result<Response, ApiError> {
    let expected = login_token(&parts.headers)?;
    let same_site = csrf::same_origin(&parts.headers, crate::auth::host(&parts).as_deref());
    let sent = cookie(&parts.headers, LOGIN_COOKIE);
    if !same_site || !sent.is_some_and(|c| csrf::tokens_match(c, Some(&form.csrf))) {
        let message = "This form expired or came from another site. Try again.";
        return login_page(StatusCode::FORBIDDEN, expected, Some(message));
    }
    let attempt = Attempt::new(&form.username, &parts);
    if let Some(secs) = attempt.throttled(&state).await? {
        let page = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            expected,
            Some(&wait_message(secs)),
        );
        return too_many(page, secs);
    }
    let user = state.db.login_user(attempt.username.clone()).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => decoy().await?,
    };
    let right = credentials::verify_password(form.password, hash).await;
    let Some(user) = user.filter(|_| right) else {
        attempt.record(&state, LoginOutcome::BadPassword).await?;
        return login_page(StatusCode::UNAUTHORIZED, expected, Some(WRONG_CREDENTIALS));
    };
    let (stage, outcome, next) = match (user.has_totp, user.role) {
        (true, _) => (Stage::Mfa, LoginOutcome::PasswordOk, "/login/mfa"),
        (false, Role::Admin) => (Stage::MfaSetup, LoginOutcome::Success, "/account/mfa"),
        (false, _) => (Stage::Full, LoginOutcome::Success, "/"),
    };
    attempt.record(&state, outcome).await?;
    let (token, session) = new_session(&state, user.user_id, stage, &attempt)?;
    state.db.create_session(session).await?;
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token));
    headers.append(header::SET_COOKIE, clear_cookie(LOGIN_COOKIE));
    Ok(response)
}

/// A session for `user_id` at `stage`: the cookie's token, and the row (holding its hash).
fn new_session(
    state: &AppState,
    user_id: i64,
    stage: Stage,
    attempt: &Attempt,
) -> Result<(String, NewSession), ApiError> {
    let token = secret::token().map_err(ApiError::internal)?;
    let row = NewSession {
        token_hash: secret::sha256(&token),
        user_id,
        stage,
        csrf_token: secret::token().map_err(ApiError::internal)?,
        ip: attempt.ip.clone(),
        user_agent: attempt.user_agent.clone(),
        now_ms: state.clock.now_ms(),
    };
    Ok((token, row))
}

/// Ends `caller`'s session and starts a signed-in one with a new token: the answer to the
/// last step of signing in (code accepted, TOTP set up).
pub(super) async fn promote(
    state: &AppState,
    caller: &Caller,
    parts: &Parts,
    response: &mut Response,
) -> Result<(), ApiError> {
    let old = caller
        .session()
        .ok_or_else(|| ApiError::internal("promoting a caller without a session"))?;
    let attempt = Attempt::new(&caller.username, parts);
    let (token, row) = new_session(state, caller.user_id, Stage::Full, &attempt)?;
    state.db.replace_session(old.session_id, row).await?;
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token));
    Ok(())
}

/// A hash of a random password, made once per process: verifying against it costs what a
/// real check costs.
async fn decoy() -> Result<String, ApiError> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_try_init(|| async {
            let random = credentials::generate_password()?;
            credentials::hash_password(random).await
        })
        .await
        .cloned()
        .map_err(ApiError::internal)
}

pub async fn code_page(caller: Caller) -> Result<Response, ApiError> {
    view::ok(&CodePage {
        nav: None,
        csrf: caller.csrf().to_string(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn code_submit(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
    ApiForm(form): ApiForm<CodeForm>,
) -> Result<Response, ApiError> {
    let page = |status, error: String| {
        view::render(
            status,
            &CodePage {
                nav: None,
                csrf: caller.csrf().to_string(),
                error: Some(error),
            },
        )
    };
    let attempt = Attempt::new(&caller.username, &parts);
    if let Some(secs) = attempt.throttled(&state).await? {
        return too_many(
            page(StatusCode::TOO_MANY_REQUESTS, wait_message(secs)),
            secs,
        );
    }
    if !second_factor(&state, caller.user_id, &form.code).await? {
        attempt.record(&state, LoginOutcome::BadCode).await?;
        return page(
            StatusCode::UNAUTHORIZED,
            "That code is wrong or was already used. Wait for the next one.".into(),
        );
    }
    attempt.record(&state, LoginOutcome::Success).await?;
    let mut response = Redirect::to("/").into_response();
    promote(&state, &caller, &parts, &mut response).await?;
    Ok(response)
}

/// A TOTP code not used before (its step is recorded), or an unused recovery code (used up).
async fn second_factor(state: &AppState, user_id: i64, code: &str) -> Result<bool, ApiError> {
    if attempt::looks_like_totp(code) {
        return Ok(attempt::fresh_totp(state, user_id, code).await?);
    }
    let normalised = secret::normalise_recovery_code(code);
    if normalised.is_empty() || normalised.len() > 32 {
        return Ok(false);
    }
    Ok(state
        .db
        .use_recovery_code(user_id, secret::sha256(&normalised), state.clock.now_ms())
        .await?)
}

pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if let Some(session) = caller.session() {
        state
            .db
            .end_session(
                caller.actor(),
                Some("session.sign_out"),
                caller.user_id,
                session.session_id,
            )
            .await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    Ok(response)
}
