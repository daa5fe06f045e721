//! The web listener: the dashboard (`ui/`) and the client API (`api/`) over HTTPS. Every
//! route is listed in [`routes`] with its access rule; the router is built from that list
//! only, and [`auth::guard`](crate::auth::guard) enforces the rules in front of every handler.

mod api;
mod assets;
pub mod cache;
pub mod openapi;
pub mod redirect;
mod refusal;
mod route;
mod ui;
mod view;

pub use route::Route;
pub use ui::login::WRONG_CREDENTIALS;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::Response;

use crate::auth::session::SessionPolicy;
use crate::auth::{ADMIN, ANYONE, Access, Guard, NOC, SSH_USERS, TOKEN_HOLDERS};
use crate::config::WebConfig;
use crate::error::{ApiError, method_not_allowed, not_found};
use crate::state::AppState;
use api::{
    alerts, audit, bans, enrollment, hosts, probes, reports, silences, sites, ssh, ssh_revoked_keys,
};
use cache::{Cache, Reuse};
use ui::{account, admin, login, mfa};

/// A request taking longer than this gets 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every route of the web listener and who may call it.
pub fn routes() -> Vec<Route> {
    use Access::{AnySession, MfaSetup, Public, Roles, SecondFactor};
    vec![
        // Signing in and out.
        Route::get("/login", Public, login::page),
        Route::post("/login", Public, login::submit),
        Route::get("/login/mfa", SecondFactor, login::code_page),
        Route::post("/login/mfa", SecondFactor, login::code_submit),
        Route::post("/logout", AnySession, login::logout),
        // One's own account.
        Route::get("/account/mfa", MfaSetup, mfa::page),
        Route::post("/account/mfa", MfaSetup, mfa::confirm),
        Route::get("/account", Roles(ANYONE), account::page),
        Route::get("/account/ssh", Roles(SSH_USERS), ui::ssh::page),
        Route::post(
            "/account/ssh/certificates",
            Roles(SSH_USERS),
            ui::ssh::create,
        ),
        Route::post(
            "/account/ssh/certificates/{serial}/revoke",
            Roles(SSH_USERS),
            ui::ssh::revoke,
        ),
        Route::post(
            "/account/ssh/revoked-keys",
            Roles(ADMIN),
            ui::ssh::revoke_key_form,
        ),
        Route::post("/account/password", Roles(ANYONE), account::password),
        Route::post(
            "/account/sessions/{session_id}/end",
            Roles(ANYONE),
            account::end_session,
        ),
        Route::post(
            "/account/tokens",
            Roles(TOKEN_HOLDERS),
            account::create_token,
        ),
        Route::post(
            "/account/tokens/{token_id}/revoke",
            Roles(TOKEN_HOLDERS),
            account::revoke_token,
        ),
        // Administration.
        Route::get("/admin/users", Roles(ADMIN), admin::users::page),
        Route::post("/admin/users", Roles(ADMIN), admin::users::add),
        Route::post(
            "/admin/users/{username}",
            Roles(ADMIN),
            admin::users::change,
        ),
        Route::get("/admin/probes", Roles(ADMIN), admin::probes::page),
        Route::get(
            "/admin/probes/{probe_id}/revoke",
            Roles(ADMIN),
            admin::probes::confirm,
        ),
        Route::post(
            "/admin/probes/{probe_id}/revoke",
            Roles(ADMIN),
            admin::probes::revoke,
        ),
        Route::get("/admin/audit", Roles(ADMIN), admin::audit::page),
        Route::get("/admin/bans", Roles(ADMIN), admin::bans::page),
        Route::get("/admin/backups", Roles(ADMIN), admin::backups::page),
        Route::post(
            "/admin/bans/{addr}/{len}/lift",
            Roles(ADMIN),
            admin::bans::lift,
        ),
        Route::get("/admin/enrollment", Roles(ADMIN), admin::enrollment::page),
        Route::post("/admin/enrollment", Roles(ADMIN), admin::enrollment::create),
        Route::post(
            "/admin/enrollment/{token_id}/revoke",
            Roles(ADMIN),
            admin::enrollment::revoke,
        ),
        // Dashboard.
        Route::get("/", Roles(ANYONE), ui::overview::index),
        Route::get("/probes/{probe_id}", Roles(ANYONE), ui::probe::page),
        Route::get("/hosts/{host_id}", Roles(ANYONE), ui::host::page),
        Route::get("/reports/{report_id}", Roles(ANYONE), ui::report::page),
        Route::get("/search", Roles(ANYONE), ui::search::page),
        Route::get("/alerts", Roles(ANYONE), ui::alerts::page),
        Route::post(
            "/alerts/{id}/acknowledge",
            Roles(NOC),
            ui::alerts::acknowledge,
        ),
        Route::post("/alerts/silences", Roles(NOC), ui::alerts::silence),
        Route::post("/alerts/silences/{id}/lift", Roles(NOC), ui::alerts::lift),
        Route::get("/static/{file}", Public, assets::file),
        Route::get("/ca.pem", Public, assets::ca_pem),
        // Client API.
        Route::get("/api/v1/openapi.json", Public, openapi::document),
        Route::get("/api/v1/sites", Roles(ANYONE), sites::list).reused(),
        Route::get("/api/v1/changes", Roles(ANYONE), sites::changes).reused(),
        Route::get("/api/v1/hosts", Roles(ANYONE), hosts::search).reused(),
        Route::get("/api/v1/hosts/{host_id}", Roles(ANYONE), hosts::one).reused(),
        Route::get("/api/v1/probes", Roles(ANYONE), probes::list).reused(),
        Route::get("/api/v1/probes/{probe_id}", Roles(ANYONE), probes::one).reused(),
        Route::post(
            "/api/v1/probes/{probe_id}/revoke",
            Roles(ADMIN),
            probes::revoke,
        ),
        Route::get(
            "/api/v1/probes/{probe_id}/hosts",
            Roles(ANYONE),
            probes::hosts,
        )
        .reused(),
        Route::get("/api/v1/probes/{probe_id}/wan", Roles(ANYONE), probes::wan).reused(),
        Route::get(
            "/api/v1/probes/{probe_id}/reports",
            Roles(ANYONE),
            probes::reports,
        )
        .reused(),
        Route::get(
            "/api/v1/probes/{probe_id}/gaps",
            Roles(ANYONE),
            probes::gaps,
        )
        .reused(),
        Route::get(
            "/api/v1/reports/{report_id}",
            Roles(ANYONE),
            reports::parsed,
        ),
        Route::get(
            "/api/v1/reports/{report_id}/signed",
            Roles(ANYONE),
            reports::signed,
        ),
        Route::get("/api/v1/audit", Roles(ADMIN), audit::list),
        Route::get("/api/v1/bans", Roles(ADMIN), bans::list),
        Route::get("/api/v1/alerts", Roles(ANYONE), alerts::list),
        Route::post(
            "/api/v1/alerts/{id}/acknowledge",
            Roles(NOC),
            alerts::acknowledge,
        ),
        Route::get("/api/v1/silences", Roles(ANYONE), silences::list),
        Route::post("/api/v1/silences", Roles(NOC), silences::create),
        Route::post("/api/v1/silences/{id}/lift", Roles(NOC), silences::lift),
        Route::get("/api/v1/ssh/ca", Roles(ANYONE), ssh::authorities),
        Route::get("/api/v1/ssh/krl", Roles(ANYONE), ssh::krl),
        Route::get("/api/v1/ssh/certificates", Roles(SSH_USERS), ssh::list),
        Route::get(
            "/api/v1/ssh/revoked-keys",
            Roles(ADMIN),
            ssh_revoked_keys::list,
        ),
        Route::post(
            "/api/v1/ssh/revoked-keys",
            Roles(ADMIN),
            ssh_revoked_keys::create,
        ),
        Route::post("/api/v1/ssh/certificates", Roles(SSH_USERS), ssh::create),
        Route::post(
            "/api/v1/ssh/certificates/{serial}/revoke",
            Roles(SSH_USERS),
            ssh::revoke,
        ),
        Route::get("/api/v1/enrollment-tokens", Roles(ADMIN), enrollment::list),
        Route::post(
            "/api/v1/enrollment-tokens",
            Roles(ADMIN),
            enrollment::create,
        ),
        Route::post(
            "/api/v1/enrollment-tokens/{token_id}/revoke",
            Roles(ADMIN),
            enrollment::revoke,
        ),
    ]
}

/// Where enrollment tokens made on the web listener send harvesters
/// ([`Config::public_ingest_address_bound`]), known once the ingest listener is bound.
#[derive(Clone)]
pub struct IngestAddress(pub Arc<str>);

pub fn router(state: AppState, config: &WebConfig) -> anyhow::Result<Router> {
    build(state, config, routes())
}

/// `router` (from [`router`]) told where harvesters reach the ingest listener.
pub fn with_ingest_address(router: Router, address: String) -> Router {
    router.layer(axum::Extension(IngestAddress(address.into())))
}

/// The router for `routes`, behind the guard, the limits and the security headers.
pub fn build(state: AppState, config: &WebConfig, routes: Vec<Route>) -> anyhow::Result<Router> {
    let rules = routes
        .iter()
        .map(|r| (r.method.clone(), r.path, r.access))
        .collect();
    let max_body = config.max_body_bytes;
    let guard = Guard {
        state: state.clone(),
        rules: Arc::new(rules),
        sessions: SessionPolicy {
            idle: config.session_idle.try_into()?,
            absolute: config.session_lifetime.try_into()?,
        },
        max_body_bytes: max_body,
    };
    let cache = Cache::new(state.clone());
    let mut router = Router::new();
    for r in routes {
        let handler = match r.reuse {
            Reuse::Never => r.handler,
            Reuse::WhileUnchanged => r
                .handler
                .layer(middleware::from_fn_with_state(cache.clone(), cache::reuse)),
        };
        router = router.route(r.path, handler);
    }
    Ok(router
        .route_layer(middleware::from_fn_with_state(guard, crate::auth::guard))
        .route_layer(middleware::from_fn_with_state("web", crate::metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::map_response(security_headers))
        .with_state(state))
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

    pub(in crate::web) use crate::state::testing::state;

    fn app(state: AppState, routes: Vec<Route>) -> Router {
        let config = crate::config::Config::loopback(std::path::Path::new("/unused"));
        build(state, &config.web, routes).unwrap()
    }

    /// No API route changes state yet; this one shows how one will be guarded: a token
    /// needs the read-write scope and no CSRF token (a browser never sends it by itself).
    #[tokio::test]
    async fn state_changing_api_calls_need_a_read_write_token_and_no_csrf() {
        let (_temp, state) = state().await;
        let hash = crate::auth::credentials::hash_password("a long enough password".into())
            .await
            .unwrap();
        state
            .db
            .add_user(
                crate::db::audit::Actor::cli(),
                "script".into(),
                crate::db::Role::Support,
                hash,
            )
            .await
            .unwrap();
        let user = state.db.user_id("script".into()).await.unwrap().unwrap();
        let mut all = routes();
        all.push(Route::post(
            "/api/v1/example",
            Access::Roles(ANYONE),
            || async { "changed" },
        ));
        let app = app(state.clone(), all);
        for (scope, status) in [
            (crate::db::Scope::Read, StatusCode::FORBIDDEN),
            (crate::db::Scope::ReadWrite, StatusCode::OK),
        ] {
            let token = crate::ops::api_tokens::create(
                &state.db,
                crate::db::audit::Actor::cli(),
                user,
                "t",
                scope,
                time::Duration::days(1),
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
        all.push(Route::get("/boom", Access::Public, boom));
        let response = app(state, all)
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
