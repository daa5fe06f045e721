//! The web listener: dashboard and client API over HTTPS. Every route is listed in
//! [`routes`] with its access rule; the router is built from that list only, and
//! [`auth::guard`](crate::auth::guard) enforces the rules in front of every handler.

mod account;
mod admin;
mod assets;
pub mod cache;
mod chart;
mod login;
pub use login::WRONG_CREDENTIALS;
mod hosts;
mod mfa;
pub mod openapi;
mod pages;
mod params;
mod probes;
pub mod redirect;
mod reports;
mod sites;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};

use crate::auth::{ADMIN, ANYONE, Access, Guard, TOKEN_HOLDERS};
use crate::error::{ApiError, method_not_allowed, not_found};
use crate::state::AppState;
use cache::Reuse;

/// A request taking longer than this gets 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub reuse: Reuse,
    handler: MethodRouter<AppState>,
}

impl Route {
    /// Its answers may be given again while the database is unchanged ([`cache`]).
    fn reused(self) -> Self {
        Self {
            reuse: Reuse::WhileUnchanged,
            ..self
        }
    }
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        method,
        path,
        access,
        reuse: Reuse::Never,
        handler,
    }
}

/// Every route of the web listener and who may call it.
pub fn routes() -> Vec<Route> {
    use Access::{AnySession, MfaSetup, Public, Roles, SecondFactor};
    use Method as M;
    vec![
        // Signing in and out.
        route(M::GET, "/login", Public, get(login::page)),
        route(M::POST, "/login", Public, post(login::submit)),
        route(M::GET, "/login/mfa", SecondFactor, get(login::code_page)),
        route(
            M::POST,
            "/login/mfa",
            SecondFactor,
            post(login::code_submit),
        ),
        route(M::POST, "/logout", AnySession, post(login::logout)),
        // One's own account.
        route(M::GET, "/account/mfa", MfaSetup, get(mfa::page)),
        route(M::POST, "/account/mfa", MfaSetup, post(mfa::confirm)),
        route(M::GET, "/account", Roles(ANYONE), get(account::page)),
        route(
            M::POST,
            "/account/password",
            Roles(ANYONE),
            post(account::password),
        ),
        route(
            M::POST,
            "/account/sessions/{session_id}/end",
            Roles(ANYONE),
            post(account::end_session),
        ),
        route(
            M::POST,
            "/account/tokens",
            Roles(TOKEN_HOLDERS),
            post(account::create_token),
        ),
        route(
            M::POST,
            "/account/tokens/{token_id}/revoke",
            Roles(TOKEN_HOLDERS),
            post(account::revoke_token),
        ),
        // Administration.
        route(M::GET, "/admin/users", Roles(ADMIN), get(admin::page)),
        route(M::POST, "/admin/users", Roles(ADMIN), post(admin::add)),
        route(
            M::POST,
            "/admin/users/{username}",
            Roles(ADMIN),
            post(admin::change),
        ),
        // Dashboard.
        route(M::GET, "/", Roles(ANYONE), get(pages::index)),
        route(
            M::GET,
            "/probes/{probe_id}",
            Roles(ANYONE),
            get(pages::probe),
        ),
        route(M::GET, "/hosts/{host_id}", Roles(ANYONE), get(pages::host)),
        route(
            M::GET,
            "/reports/{report_id}",
            Roles(ANYONE),
            get(pages::report),
        ),
        route(M::GET, "/search", Roles(ANYONE), get(pages::search)),
        route(M::GET, "/static/{file}", Public, get(assets::file)),
        route(M::GET, "/ca.pem", Public, get(assets::ca_pem)),
        // Client API.
        route(
            M::GET,
            "/api/v1/openapi.json",
            Public,
            get(openapi::document),
        ),
        route(M::GET, "/api/v1/sites", Roles(ANYONE), get(sites::list)).reused(),
        route(
            M::GET,
            "/api/v1/changes",
            Roles(ANYONE),
            get(sites::changes),
        )
        .reused(),
        route(M::GET, "/api/v1/hosts", Roles(ANYONE), get(hosts::search)).reused(),
        route(
            M::GET,
            "/api/v1/hosts/{host_id}",
            Roles(ANYONE),
            get(hosts::one),
        )
        .reused(),
        route(M::GET, "/api/v1/probes", Roles(ANYONE), get(probes::list)).reused(),
        route(
            M::GET,
            "/api/v1/probes/{probe_id}",
            Roles(ANYONE),
            get(probes::one),
        )
        .reused(),
        route(
            M::GET,
            "/api/v1/probes/{probe_id}/hosts",
            Roles(ANYONE),
            get(probes::hosts),
        )
        .reused(),
        route(
            M::GET,
            "/api/v1/probes/{probe_id}/wan",
            Roles(ANYONE),
            get(probes::wan),
        )
        .reused(),
        route(
            M::GET,
            "/api/v1/probes/{probe_id}/reports",
            Roles(ANYONE),
            get(probes::reports),
        )
        .reused(),
        route(
            M::GET,
            "/api/v1/probes/{probe_id}/gaps",
            Roles(ANYONE),
            get(probes::gaps),
        )
        .reused(),
        route(
            M::GET,
            "/api/v1/reports/{report_id}",
            Roles(ANYONE),
            get(reports::parsed),
        ),
        route(
            M::GET,
            "/api/v1/reports/{report_id}/signed",
            Roles(ANYONE),
            get(reports::signed),
        ),
    ]
}

pub fn router(state: AppState) -> Router {
    build(state, routes())
}

/// The router for `routes`, behind the guard, the limits and the security headers.
pub fn build(state: AppState, routes: Vec<Route>) -> Router {
    let rules = routes
        .iter()
        .map(|r| (r.method.clone(), r.path, r.access))
        .collect();
    let guard = Guard {
        state: state.clone(),
        rules: Arc::new(rules),
    };
    let max_body = state.web_max_body_bytes;
    let mut router = Router::new();
    for r in routes {
        let handler = match r.reuse {
            Reuse::Never => r.handler,
            Reuse::WhileUnchanged => r
                .handler
                .layer(middleware::from_fn_with_state(state.clone(), cache::reuse)),
        };
        router = router.route(r.path, handler);
    }
    router
        .route_layer(middleware::from_fn_with_state(guard, crate::auth::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    axum::response::IntoResponse::into_response(ApiError::internal("a handler panicked"))
}

/// On every response: no inline script, no framing, no sniffing, HTTPS only, and nothing
/// kept by the browser unless the handler said it may be (static files), so the back button
/// after signing out shows no data.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: with it, browsers send `Origin: null` on form posts, and the
        // CSRF check (rightly) refuses those. `same-origin` still tells other sites nothing.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    pub(in crate::web) async fn state() -> (tempfile::TempDir, AppState) {
        let temp = tempfile::tempdir().unwrap();
        let dir = crate::datadir::DataDir::new(temp.path().join("n"));
        crate::commands::init(&dir, &[]).unwrap();
        let state = AppState::open(&crate::config::Config::loopback(dir.root())).unwrap();
        (temp, state)
    }

    /// No API route changes state yet; this one shows how one will be guarded: a token
    /// needs the read-write scope and no CSRF token (a browser never sends it by itself).
    #[tokio::test]
    async fn state_changing_api_calls_need_a_read_write_token_and_no_csrf() {
        let (_temp, state) = state().await;
        let hash = crate::users::hash_password("a long enough password".into())
            .await
            .unwrap();
        state
            .db
            .add_user("script".into(), crate::users::Role::Support, hash)
            .await
            .unwrap();
        let user = state.db.user_id("script".into()).await.unwrap().unwrap();
        let mut all = routes();
        all.push(route(
            Method::POST,
            "/api/v1/example",
            Access::Roles(ANYONE),
            post(|| async { "changed" }),
        ));
        let app = build(state.clone(), all);
        for (scope, status) in [
            (crate::db::Scope::Read, StatusCode::FORBIDDEN),
            (crate::db::Scope::ReadWrite, StatusCode::OK),
        ] {
            let token = crate::commands::create_api_token(
                &state.db,
                user,
                "t",
                scope,
                time::Duration::days(1),
                state.clock.now(),
            )
            .await
            .unwrap();
            let request = Request::post("/api/v1/example")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status, "{scope:?}");
        }
    }

    /// A handler that fails in the worst way still gets a JSON 500 with every security
    /// header (the e2e suite covers the other statuses over HTTPS).
    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_with_the_headers() {
        let (_temp, state) = state().await;
        let mut all = routes();
        all.push(route(Method::GET, "/boom", Access::Public, get(boom)));
        let response = build(state, all)
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let h = response.headers();
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal");
    }
}
