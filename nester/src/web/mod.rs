//! The web listener: dashboard and client API over HTTPS. Every route is listed here; handlers
//! live in one file per resource.

mod assets;
pub mod openapi;
mod pages;
mod probes;
pub mod redirect;
mod reports;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;

use crate::error::{method_not_allowed, not_found};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/static/{file}", get(assets::file))
        .route("/ca.pem", get(assets::ca_pem))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/probes", get(probes::list))
        .route("/api/v1/probes/{probe_id}/reports", get(probes::reports))
        .route("/api/v1/probes/{probe_id}/gaps", get(probes::gaps))
        .route("/api/v1/reports/{report_id}", get(reports::parsed))
        .route("/api/v1/reports/{report_id}/signed", get(reports::signed))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// On every response: no inline script, no framing, no sniffing, HTTPS only.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
