//! Static assets from `dashboard/static/`, compiled into the binary, and the public CA.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::error::{ApiError, ApiPath};
use crate::state::AppState;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../dashboard/static/style.css"),
    ),
    (
        "refresh.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../dashboard/static/refresh.js"),
    ),
    (
        "copy.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../dashboard/static/copy.js"),
    ),
];

pub async fn file(ApiPath(name): ApiPath<String>) -> Result<impl IntoResponse, ApiError> {
    let (_, mime, body) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::not_found(format!("no asset named {name}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *mime),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        *body,
    ))
}

/// Every CA certificate that signed a certificate here (the issuing one first), so any
/// stored report verifies offline and support engineers can pin the nester.
pub async fn ca_pem(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.authorities.get().bundle_pem(),
    )
}
