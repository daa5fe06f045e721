//! Setting up TOTP: a secret shown as a QR code drawn on the server, confirmed with a code,
//! then ten one-time recovery codes shown once. Admins are brought here until they do it.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, request::Parts};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::{Caller, secret, totp};
use crate::db::Stage;
use crate::error::{ApiError, ApiForm};
use crate::state::AppState;
use crate::web::view::{self, Nav, Notice};

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    nav: Option<Nav>,
    username: String,
    enabled: bool,
    recovery_left: u32,
    /// An admin who may do nothing else first.
    must: bool,
    error: Option<String>,
    qr_svg: String,
    secret: String,
    csrf: String,
}

fn setting_up(caller: &Caller) -> bool {
    caller.session().is_some_and(|s| s.stage == Stage::MfaSetup)
}

async fn setup_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let session = caller
        .session()
        .ok_or_else(|| ApiError::internal("TOTP setup without a session"))?;
    let secret = match &session.pending_totp {
        Some(s) => s.clone(),
        None => {
            let s = totp::new_secret().map_err(ApiError::internal)?;
            state
                .db
                .set_pending_totp(session.session_id, s.clone())
                .await?;
            s
        }
    };
    let url = totp::otpauth_url(&secret, &caller.username).map_err(ApiError::internal)?;
    view::render(
        status,
        &MfaPage {
            nav: (!setting_up(caller)).then(|| Nav::of(caller)).flatten(),
            username: caller.username.clone(),
            enabled: false,
            recovery_left: 0,
            must: setting_up(caller),
            error,
            qr_svg: totp::qr_svg(&url).map_err(ApiError::internal)?,
            secret: totp::base32(&secret),
            csrf: caller.csrf().to_string(),
        },
    )
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if state.db.totp(caller.user_id).await?.is_some() {
        return view::ok(&MfaPage {
            nav: Nav::of(&caller),
            username: caller.username.clone(),
            enabled: true,
            recovery_left: state.db.recovery_codes_left(caller.user_id).await?,
            must: false,
            error: None,
            qr_svg: String::new(),
            secret: String::new(),
            csrf: caller.csrf().to_string(),
        });
    }
    setup_page(&state, &caller, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
    ApiForm(form): ApiForm<ConfirmForm>,
) -> Result<Response, ApiError> {
    if state.db.totp(caller.user_id).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "mfa_enabled",
            "two-factor authentication is already on",
        ));
    }
    let pending = caller.session().and_then(|s| s.pending_totp.clone());
    let now = u64::try_from(state.clock.now().unix_timestamp()).unwrap_or(0);
    let step = pending
        .as_deref()
        .and_then(|secret| totp::matching_step(secret, &form.code, now));
    let (Some(secret), Some(step)) = (pending, step) else {
        let error =
            "That code does not match. Check the clock of the device and try the next code.";
        return setup_page(&state, &caller, StatusCode::BAD_REQUEST, Some(error.into())).await;
    };
    let (codes, hashes) = secret::recovery_codes().map_err(ApiError::internal)?;
    state
        .db
        .enable_totp(caller.actor(), caller.user_id, secret, step, hashes)
        .await?;
    tracing::info!(username = %caller.username, "two-factor authentication turned on");
    let mut response = view::ok(&Notice {
        nav: None,
        title: "Two-factor authentication is on".into(),
        message: "Each recovery code below signs you in once if you lose your authenticator. \
                  Keep them somewhere safe."
            .into(),
        secrets: codes,
        next: "/".into(),
    })?;
    super::login::promote(&state, &caller, &parts, &mut response).await?;
    Ok(response)
}
