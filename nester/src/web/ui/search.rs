//! Host search across every site, by name or address.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::rows::{HostRow, host_row};
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery};
use crate::ops::hosts;
use crate::ops::query::Paging;
use crate::state::AppState;
use crate::web::view::{Nav, ok};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Option<Nav>,
    q: String,
    error: String,
    hosts: Vec<(HostRow, String, String)>,
    next: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    let q = query.q.unwrap_or_default();
    let mut page = SearchPage {
        nav: Nav::of(&caller),
        q: q.clone(),
        error: String::new(),
        hosts: Vec::new(),
        next: None,
    };
    if !q.trim().is_empty() {
        let paging = Paging {
            limit: Some(100),
            cursor: query.cursor,
        };
        match hosts::find(&state.db, &q, paging)
            .await
            .map_err(ApiError::from)
        {
            Ok(found) => {
                page.next = found.next_cursor;
                page.hosts = found
                    .items
                    .into_iter()
                    .map(|h| (h.site.clone(), h.probe_id.to_string(), h))
                    .map(|(site, probe, h)| (host_row(h), site, probe))
                    .collect();
            }
            Err(e) if e.status.is_client_error() => page.error = e.message,
            Err(e) => return Err(e),
        }
    }
    ok(&page)
}
