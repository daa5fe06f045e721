//! The API error shape, on every listener: `{"error":{"code":"...","message":"..."}}`
//! ([`ErrorBody`], declared in `shared` with the codes harvesters act on).
//! A 4xx carries its message; a 5xx says nothing specific and the detail is logged.

use axum::Json;
use axum::extract::rejection::{
    BytesRejection, FormRejection, JsonRejection, PathRejection, QueryRejection,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use shared::protocol::{ErrorBody, ErrorDetail};

use crate::db::DbError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

/// The code of an error response, for the access log and detection (a response extension).
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(Refusal(self.code));
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        Self::internal(e)
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_query", r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(r.status(), "payload_too_large", r.body_text())
            }
            status if status.is_client_error() => Self::new(status, "bad_body", r.body_text()),
            _ => Self::internal(r.body_text()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                r.status(),
                "unsupported_media_type",
                "send JSON (application/json)",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(r.status(), "payload_too_large", r.body_text())
            }
            status if status.is_client_error() => {
                Self::new(StatusCode::BAD_REQUEST, "bad_json", r.body_text())
            }
            _ => Self::internal(r.body_text()),
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> Self {
        match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                r.status(),
                "unsupported_media_type",
                "send a form (application/x-www-form-urlencoded)",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(r.status(), "payload_too_large", r.body_text())
            }
            status if status.is_client_error() => {
                Self::new(StatusCode::BAD_REQUEST, "bad_form", r.body_text())
            }
            _ => Self::internal(r.body_text()),
        }
    }
}

/// `Form` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::extract::Form), rejection(ApiError))]
pub struct ApiForm<T>(pub T);

/// `Json` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Path` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query` whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
