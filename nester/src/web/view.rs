//! What every page shares: the navigation (who is signed in, the sign-out form with its
//! CSRF token) and rendering a template into a response.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::users::Role;

/// The top bar of a signed-in page.
pub struct Nav {
    pub username: String,
    pub role: Role,
    pub csrf: String,
    pub admin: bool,
}

impl Nav {
    pub fn of(caller: &Caller) -> Option<Self> {
        Some(Self {
            username: caller.username.clone(),
            role: caller.role,
            csrf: caller.csrf().to_string(),
            admin: caller.role == Role::Admin,
        })
    }
}

/// `page` rendered, with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Result<Response, ApiError> {
    Ok((status, Html(page.render().map_err(ApiError::internal)?)).into_response())
}

pub fn ok(page: &impl Template) -> Result<Response, ApiError> {
    render(StatusCode::OK, page)
}
