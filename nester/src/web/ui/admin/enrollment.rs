//! The enrollment tokens page: make a token (shown once, with a copy button and the command
//! to run on the site's box), list them with their state, revoke one.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiForm, ApiPath};
use crate::ops::enrollment::{self, CreatedToken};
use crate::state::AppState;
use crate::web::IngestAddress;
use crate::web::view::{self, Nav};

struct TokenRow {
    token_id: String,
    site: String,
    state: &'static str,
    usable: bool,
    uses: u32,
    max_uses: u32,
    created: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "enrollment.html")]
struct TokensPage {
    nav: Option<Nav>,
    csrf: String,
    tokens: Vec<TokenRow>,
    ingest: String,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    caller: &Caller,
    ingest: &IngestAddress,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let tokens = state
        .db
        .tokens()
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            state: t.state(now).as_str(),
            usable: t.state(now) == crate::db::TokenState::Usable,
            uses: t.uses,
            max_uses: t.max_uses,
            created: rfc3339(t.created_at),
            expires: rfc3339(t.expires_at),
            token_id: t.token_id,
            site: t.site,
        })
        .collect();
    view::render(
        status,
        &TokensPage {
            nav: Nav::of(caller),
            csrf: caller.csrf().to_string(),
            tokens,
            ingest: ingest.0.to_string(),
            error,
        },
    )
}

pub async fn page(
    State(state): State<AppState>,
    Extension(ingest): Extension<IngestAddress>,
    caller: Caller,
) -> Result<Response, ApiError> {
    tokens_page(&state, &caller, &ingest, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    site: String,
    #[serde(default)]
    ttl: String,
    #[serde(default)]
    uses: String,
}

#[derive(Template)]
#[template(path = "token_created.html")]
struct CreatedPage {
    nav: Option<Nav>,
    created: CreatedToken,
    expires: String,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(ingest): Extension<IngestAddress>,
    caller: Caller,
    ApiForm(form): ApiForm<CreateForm>,
) -> Result<Response, ApiError> {
    let made = match form.uses.trim().parse::<u32>() {
        Ok(uses) => {
            let ca = &state.authorities.get().issuing.cert;
            let dial = ingest.0.to_string();
            enrollment::make(
                &state.db,
                caller.actor(),
                ca,
                dial,
                &form.site,
                &form.ttl,
                uses,
            )
            .await
            .map_err(ApiError::from)
        }
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_token_request",
            "the uses must be a whole number between 1 and 10,000",
        )),
    };
    match made {
        Ok(created) => view::ok(&CreatedPage {
            nav: Nav::of(&caller),
            expires: rfc3339(created.expires_at),
            created,
        }),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            tokens_page(&state, &caller, &ingest, e.status, Some(e.message)).await
        }
        Err(e) => Err(e),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    enrollment::revoke(&state.db, caller.actor(), &token_id).await?;
    Ok(Redirect::to("/admin/enrollment").into_response())
}
