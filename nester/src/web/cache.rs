//! Answers reused while the database has not changed.
//!
//! A wall of dashboards and a fleet of scripts ask the same few questions (the probe list, a
//! probe's page data) far more often than reports arrive. Routes marked
//! [`Reuse::WhileUnchanged`] answer the same to everyone allowed to ask, from the database
//! and the time alone; their 200 answers are kept by request URI and given again while
//! [`Db::version`](crate::db::Db::version) is unchanged and they are younger than
//! [`MAX_AGE_MS`] (statuses and "last 24 hours" windows move with the clock). The guard runs
//! before this layer, so every request is still authenticated and authorised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Whether a route's answers may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    Never,
    /// The same for every caller the route admits, and a function of the database and the
    /// time only.
    WhileUnchanged,
}

/// How long an answer may be given again, at most.
pub const MAX_AGE_MS: i64 = 1_000;
/// Answers kept at most; the oldest half goes when full.
const MAX_ENTRIES: usize = 1_024;
/// Larger answers are not kept.
const MAX_BODY: usize = 1 << 20;

#[derive(Clone, Default)]
pub struct Answers {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// One computation per URI at a time: the others wait for its answer instead of all
    /// asking the database at once when an answer ages out.
    computing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

#[derive(Clone)]
struct Entry {
    version: u64,
    at_ms: i64,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl Entry {
    fn response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        if let Some(content_type) = self.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        response
    }
}

impl Answers {
    fn get(&self, key: &str, version: u64, now_ms: i64) -> Option<Entry> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        let age = now_ms - entry.at_ms;
        (entry.version == version && (0..MAX_AGE_MS).contains(&age)).then(|| entry.clone())
    }

    fn turn(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut computing = self
            .computing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        computing.retain(|_, turn| Arc::strong_count(turn) > 1);
        computing.entry(key.to_string()).or_default().clone()
    }

    fn put(&self, key: String, entry: Entry) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let mut ages: Vec<i64> = entries.values().map(|e| e.at_ms).collect();
            let (_, median, _) = ages.select_nth_unstable(MAX_ENTRIES / 2);
            let median = *median;
            entries.retain(|_, e| e.at_ms > median);
        }
        entries.insert(key, entry);
    }
}

/// The layer on [`Reuse::WhileUnchanged`] routes.
pub async fn reuse(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = request.uri().to_string();
    let now_ms = state.clock.now_ms();
    // Read before the handler runs: a commit during it makes the answer look old, not new.
    let version = match state.db.version() {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(entry) = state.answers.get(&key, version, now_ms) {
        return entry.response();
    }
    let turn = state.answers.turn(&key);
    let _turn = turn.lock().await;
    // Whoever went before may have just answered the same question.
    if let Some(entry) = state.answers.get(&key, version, now_ms) {
        return entry.response();
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return ApiError::internal(format!("reading an answer: {e}")).into_response(),
    };
    state.answers.put(
        key,
        Entry {
            version,
            at_ms: now_ms,
            content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
            body: body.clone(),
        },
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64, at_ms: i64) -> Entry {
        Entry {
            version,
            at_ms,
            content_type: None,
            body: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn an_answer_is_given_again_only_at_the_same_version_and_while_young() {
        let answers = Answers::default();
        answers.put("/a".into(), entry(7, 1_000));
        assert!(answers.get("/a", 7, 1_000).is_some());
        assert!(answers.get("/a", 7, 1_000 + MAX_AGE_MS - 1).is_some());
        assert!(
            answers.get("/a", 7, 1_000 + MAX_AGE_MS).is_none(),
            "too old"
        );
        assert!(answers.get("/a", 7, 999).is_none(), "clock moved back");
        assert!(answers.get("/a", 8, 1_000).is_none(), "database changed");
        assert!(answers.get("/b", 7, 1_000).is_none());
    }

    #[test]
    fn one_computation_per_uri_at_a_time() {
        let answers = Answers::default();
        let first = answers.turn("/a");
        let held = first.try_lock().unwrap();
        assert!(answers.turn("/a").try_lock().is_err(), "the same URI waits");
        assert!(
            answers.turn("/b").try_lock().is_ok(),
            "another URI does not"
        );
        drop(held);
        drop(first);
        answers.turn("/c");
        assert!(
            !answers.computing.lock().unwrap().contains_key("/a"),
            "finished turns are forgotten"
        );
    }

    #[test]
    fn a_full_cache_keeps_its_newest_half() {
        let answers = Answers::default();
        for i in 0..MAX_ENTRIES as i64 {
            answers.put(format!("/{i}"), entry(1, i));
        }
        answers.put("/new".into(), entry(1, 5_000));
        let entries = answers.entries.lock().unwrap();
        assert!(entries.len() <= MAX_ENTRIES / 2 + 1);
        assert!(entries.contains_key("/new"));
        assert!(entries.contains_key(&format!("/{}", MAX_ENTRIES - 1)));
        assert!(!entries.contains_key("/0"));
    }
}
