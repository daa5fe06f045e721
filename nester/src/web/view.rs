//! What every page shares: the navigation (who is signed in, the sign-out form with its
//! CSRF token) and rendering a template into a response.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::Caller;
use crate::db::Role;
use crate::error::ApiError;

/// The top bar of a signed-in page.
pub struct Nav {
    pub username: String,
    pub role: Role,
    pub csrf: String,
    pub admin: bool,
    pub alerts_firing: u32,
}

impl Nav {
    pub fn of(caller: &Caller) -> Option<Self> {
        Some(Self {
            username: caller.username.clone(),
            role: caller.role,
            csrf: caller.csrf().to_string(),
            admin: caller.role == Role::Admin,
            alerts_firing: caller.alerts_firing,
        })
    }
}

/// A message, with secrets shown once (a new password, an API token, recovery codes).
#[derive(Template)]
#[template(path = "notice.html")]
pub struct Notice {
    pub nav: Option<Nav>,
    pub title: String,
    pub message: String,
    pub secrets: Vec<String>,
    pub next: String,
}

/// `page` rendered, with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Result<Response, ApiError> {
    Ok((status, Html(page.render().map_err(ApiError::internal)?)).into_response())
}

pub fn ok(page: &impl Template) -> Result<Response, ApiError> {
    render(StatusCode::OK, page)
}
