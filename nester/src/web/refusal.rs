//! An operation's refusal (`ops`) at the web edge: the API and the pages answer with its
//! status and code, and its message.

use axum::http::StatusCode;

use crate::error::ApiError;
use crate::ops::{Kind, Refused};

/// An operation's refusal at the web edge: its kind picks the status; an internal one is
/// logged and answered with nothing specific.
impl<E: Refused> From<E> for ApiError {
    fn from(e: E) -> Self {
        let status = match e.kind() {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Kind::Internal => return Self::internal(e),
        };
        Self::new(status, e.code(), e.to_string())
    }
}
