//! The optional plain-HTTP listener: every request is sent to the same path on HTTPS, at the
//! configured public address (never at the request's `Host`, which a client chooses).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};

pub fn router(base: String) -> Router {
    Router::new()
        .fallback(redirect)
        .layer(middleware::map_response(super::security_headers))
        .with_state(base.into())
}

async fn redirect(State(base): State<std::sync::Arc<str>>, uri: Uri) -> Response {
    // Only a path of our own: anything else (an absolute or protocol-relative target) goes to
    // the root, so the redirect can never point elsewhere.
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = if target.starts_with('/') && !target.starts_with("//") {
        target
    } else {
        "/"
    };
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("{base}{target}"))],
    )
        .into_response()
}
