//! Who may call what on the web listener. Every route has an [`Access`] rule in
//! `web::routes`; [`guard`], one layer over the whole router, resolves the caller (session
//! cookie, or API token on `/api/`), checks the rule, the session's stage, the role, the
//! token's scope and CSRF, and hands the handler a [`Caller`]. A route without a rule is
//! refused: the check fails closed.

pub mod attempt;
pub mod credentials;
pub mod csrf;
mod guard;
pub mod secret;
pub mod session;
pub mod throttle;
pub mod totp;

pub use guard::{Guard, Rules, guard, host};

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use crate::db::{Role, Scope, SessionRow};
use crate::error::ApiError;
use crate::net::Peer;

/// Every role.
pub const ANYONE: &[Role] = &[Role::Admin, Role::Noc, Role::Support];
pub const ADMIN: &[Role] = &[Role::Admin];
/// Who acknowledges and silences alerts.
pub const NOC: &[Role] = &[Role::Admin, Role::Noc];
/// Roles that may hold API tokens.
pub const TOKEN_HOLDERS: &[Role] = &[Role::Admin, Role::Support];
/// Roles that may have SSH certificates (with the principals `[ssh]` gives them).
pub const SSH_USERS: &[Role] = &[Role::Admin, Role::Support];

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nobody needs to sign in: the sign-in page, static files, the CA, the API description.
    Public,
    /// Any session at any stage (signing out).
    AnySession,
    /// A session whose password was right and whose TOTP code is awaited.
    SecondFactor,
    /// Setting up TOTP: a signed-in session, or an admin's that must do this first.
    MfaSetup,
    /// Signed in (a session, or an API token on `/api/`) with one of these roles.
    Roles(&'static [Role]),
}

/// The signed-in user a request comes from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// The connection's address (never a header's).
    pub ip: Option<std::net::IpAddr>,
    /// Alerts firing now, for the navigation bar (browser sessions only).
    pub alerts_firing: u32,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session(SessionRow),
    Token { token_id: i64, scope: Scope },
}

impl Caller {
    pub fn session(&self) -> Option<&SessionRow> {
        match &self.via {
            Via::Session(s) => Some(s),
            Via::Token { .. } => None,
        }
    }

    /// Who this is, for the audit log.
    pub fn actor(&self) -> crate::db::audit::Actor {
        crate::db::audit::Actor::user(&self.username, self.ip)
    }

    /// The session's CSRF token, for forms (empty for API tokens).
    pub fn csrf(&self) -> &str {
        self.session().map_or("", |s| s.csrf_token.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a handler asked for a caller on a public route"))
    }
}

/// The client's IP (from the connection, never from a header) and user agent.
pub fn client(headers: &axum::http::HeaderMap, peer: Option<&Peer>) -> (String, String) {
    let ip = peer.map_or_else(|| "unknown".to_string(), |p| p.addr.ip().to_string());
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect();
    (ip, agent)
}
