//! The audit log page: the same read as `GET /api/v1/audit` (and recorded the same way),
//! with the chain's state on top and filters that stay in the address.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiQuery};
use crate::ops::audit::{AuditFilter, ChainState, chain_state, read};
use crate::state::AppState;
use crate::web::view::{self, Nav};

struct Row {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    ip: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    chain: ChainState,
    rows: Vec<Row>,
    /// The filters as given, to show them back in the form and carry them to the next page.
    actor: String,
    action: String,
    ip: String,
    from: String,
    to: String,
    next: Option<String>,
    error: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Response, ApiError> {
    let shown = [
        &filter.actor,
        &filter.action,
        &filter.ip,
        &filter.from,
        &filter.to,
    ]
    .map(|v| v.clone().unwrap_or_default());
    let [actor, action, ip, from, to] = shown;
    let read = read(&state.db, &state.dir, caller.actor(), filter).await;
    let (status, rows, next, error, chain) = match read.map_err(ApiError::from) {
        Ok(page) => {
            let next = page.next_cursor.map(|cursor| {
                let query = [
                    ("actor", &actor),
                    ("action", &action),
                    ("ip", &ip),
                    ("from", &from),
                    ("to", &to),
                    ("cursor", &cursor),
                ]
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .fold(
                    &mut form_urlencoded::Serializer::new(String::new()),
                    |q, (k, v)| q.append_pair(k, v),
                )
                .finish();
                format!("/admin/audit?{query}")
            });
            let rows = page
                .items
                .into_iter()
                .map(|e| Row {
                    seq: e.seq,
                    at: rfc3339(e.at),
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    ip: e.source_ip.unwrap_or_default(),
                    details: e.details,
                })
                .collect();
            (StatusCode::OK, rows, next, None, page.chain)
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => (
            e.status,
            Vec::new(),
            None,
            Some(e.message),
            chain_state(&state.db, &state.dir).await?,
        ),
        Err(e) => return Err(e),
    };
    view::render(
        status,
        &AuditPage {
            nav: Nav::of(&caller),
            chain,
            rows,
            actor,
            action,
            ip,
            from,
            to,
            next,
            error,
        },
    )
}
