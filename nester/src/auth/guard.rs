//! The guard: one layer in front of every web route. It finds the caller (the session
//! cookie, or an API token on `/api/` only), checks the route's [`Access`] rule, the
//! session's stage, the role, a token's scope and CSRF, and hands the handler a [`Caller`].
//! A route without a rule is refused: the check fails closed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{self, SessionPolicy};
use super::{Access, Caller, Via, csrf, secret};
use crate::db::audit::Actor;
use crate::db::{Scope, SessionRow, Stage};
use crate::error::ApiError;
use crate::state::AppState;

/// What the guard needs: the shared state, the rules of the router it guards, when
/// sessions end, and the largest body it may read (a form's CSRF token).
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub rules: Rules,
    pub sessions: SessionPolicy,
    pub max_body_bytes: usize,
}

/// The rules of a router: method, route pattern, access.
pub type Rules = Arc<Vec<(Method, &'static str, Access)>>;

/// Why a request does not get through, and how to say so.
enum Refusal {
    /// No (valid) credentials.
    SignIn,
    /// Signed in, but the session must first finish at this page.
    FinishAt(&'static str),
    Forbidden(&'static str),
    Csrf,
}

fn refuse(refusal: Refusal, api: bool) -> Response {
    match refusal {
        Refusal::SignIn if api => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in, or send an API token as `Authorization: Bearer shk_...`",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"seahawks\""),
            );
            r
        }
        Refusal::SignIn => Redirect::to("/login").into_response(),
        Refusal::FinishAt(_) if api => refuse(Refusal::SignIn, true),
        Refusal::FinishAt(page) => Redirect::to(page).into_response(),
        Refusal::Forbidden(why) => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", why).into_response()
        }
        Refusal::Csrf => ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form is stale or came from another site; reload the page and try again",
        )
        .into_response(),
    }
}

/// The layer in front of every route.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Some(pattern) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
    else {
        return next.run(request).await;
    };
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let Some(access) = guard
        .rules
        .iter()
        .find(|(m, p, _)| *m == method && *p == pattern)
        .map(|(_, _, a)| *a)
    else {
        if guard.rules.iter().any(|(_, p, _)| *p == pattern) {
            // A method the route does not have: the router answers 405.
            return next.run(request).await;
        }
        return ApiError::internal(format!("route {pattern} has no access rule")).into_response();
    };
    if access == Access::Public {
        return next.run(request).await;
    }
    let api = pattern.starts_with("/api/");
    match admit(&guard, access, api, request).await {
        Ok(request) => {
            let who = request
                .extensions()
                .get::<Caller>()
                .map(|c| crate::net::access_log::Who(format!("user:{}", c.username)));
            let mut response = next.run(request).await;
            if let Some(who) = who {
                response.extensions_mut().insert(who);
            }
            response
        }
        Err(Ok(refusal)) => refuse(refusal, api),
        Err(Err(error)) => error.into_response(),
    }
}

type Admission = Result<Request, Result<Refusal, ApiError>>;

async fn admit(guard: &Guard, access: Access, api: bool, request: Request) -> Admission {
    let now_ms = guard.state.clock.now_ms();
    let caller = match identify(guard, api, request.headers(), now_ms).await {
        Ok(Some(c)) => Caller {
            ip: request
                .extensions()
                .get::<crate::net::Peer>()
                .map(|p| p.addr.ip()),
            ..c
        },
        Ok(None) => return Err(Ok(Refusal::SignIn)),
        Err(e) => return Err(Err(e)),
    };
    let stage = caller.session().map_or(Stage::Full, |s| s.stage);
    let stage_ok = match (access, stage) {
        (Access::AnySession, _) => caller.session().is_some(),
        (Access::SecondFactor, Stage::Mfa) => true,
        (Access::SecondFactor, _) => return Err(Ok(Refusal::FinishAt("/"))),
        (Access::MfaSetup, Stage::MfaSetup | Stage::Full) => caller.session().is_some(),
        (_, Stage::Mfa) => return Err(Ok(Refusal::FinishAt("/login/mfa"))),
        (_, Stage::MfaSetup) => return Err(Ok(Refusal::FinishAt("/account/mfa"))),
        (Access::Roles(roles), Stage::Full) => {
            if !roles.contains(&caller.role) {
                return Err(Ok(Refusal::Forbidden("your role may not do this")));
            }
            true
        }
        (Access::Public, _) => true,
    };
    if !stage_ok {
        return Err(Ok(Refusal::SignIn));
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    let request = match (&caller.via, changes_state) {
        (_, false) => request,
        (Via::Token { scope, .. }, true) => {
            if *scope == Scope::Read {
                return Err(Ok(Refusal::Forbidden(
                    "this API token is read-only; create a read-write one",
                )));
            }
            request
        }
        (Via::Session(session), true) => check_csrf(guard, session, request).await?,
    };
    let mut request = request;
    request.extensions_mut().insert(caller);
    Ok(request)
}

/// The caller from the API token (on `/api/` only) or the session cookie; expired sessions
/// are deleted on sight.
async fn identify(
    guard: &Guard,
    api: bool,
    headers: &axum::http::HeaderMap,
    now_ms: i64,
) -> Result<Option<Caller>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token.filter(|_| api) else {
            return Ok(None);
        };
        return Ok(guard
            .state
            .db
            .use_api_token(secret::sha256(token), now_ms)
            .await?
            .map(|t| Caller {
                user_id: t.user_id,
                username: t.username,
                role: t.role,
                ip: None,
                alerts_firing: 0,
                via: Via::Token {
                    token_id: t.token_id,
                    scope: t.scope,
                },
            }));
    }
    let Some(token) = session::cookie(headers, session::SESSION_COOKIE) else {
        return Ok(None);
    };
    let db = &guard.state.db;
    let Some(row) = db.session(secret::sha256(token)).await? else {
        return Ok(None);
    };
    if guard.sessions.expired(&row, now_ms) {
        db.end_session(Actor::server(), None, row.user_id, row.session_id)
            .await?;
        return Ok(None);
    }
    if now_ms - row.seen_ms >= session::TOUCH_EVERY_MS {
        db.touch_session(row.session_id, now_ms).await?;
    }
    // Every page shows how many alerts fire (a one-row read on this thread).
    let alerts_firing = db.firing_alerts().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot count the firing alerts");
        0
    });
    Ok(Some(Caller {
        user_id: row.user_id,
        username: row.username.clone(),
        role: row.role,
        ip: None,
        alerts_firing,
        via: Via::Session(row),
    }))
}

/// Origin check, then the token from the header or the url-encoded body (which is read
/// here, within the body limit, and put back for the handler).
async fn check_csrf(guard: &Guard, session: &SessionRow, request: Request) -> Admission {
    let (parts, body) = request.into_parts();
    let host = host(&parts);
    if !csrf::same_origin(&parts.headers, host.as_deref()) {
        return Err(Ok(Refusal::Csrf));
    }
    let bytes = axum::body::to_bytes(body, guard.max_body_bytes)
        .await
        .map_err(|_| {
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "a request body may have at most {} bytes",
                    guard.max_body_bytes
                ),
            ))
        })?;
    let given = csrf::token_in(&parts.headers, &bytes);
    if !csrf::tokens_match(&session.csrf_token, given.as_deref()) {
        return Err(Ok(Refusal::Csrf));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The host the browser addressed (`Host`, or the HTTP/2 authority).
pub fn host(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
}
