//! Answers reused while the database has not changed.
//!
//! A wall of dashboards and a fleet of scripts ask the same few questions (the probe list, a
//! probe's page data) far more often than reports arrive. Routes marked
//! [`Reuse::WhileUnchanged`] answer the same to everyone allowed to ask, from the database
//! and the time alone; their 200 answers are kept by request URI and given again while
//! [`Db::version`](crate::db::Db::version) is unchanged and they are younger than
//! [`MAX_AGE_MS`] (statuses and "last 24 hours" windows move with the clock). The guard runs
//! before this layer, so every request is still authenticated and authorised.
//!
//! One computation per URI runs at a time. Callers that arrive meanwhile wait for it, except
//! when the database has not changed since the kept answer: that answer has only aged, and is
//! given once more (at most [`MAX_AGE_MS`] past its age) rather than making them queue.
//!
//! Answers are kept gzip-compressed as well (compressed once, given many times), for clients
//! that accept it: browsers, curl `--compressed`, Python's requests.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
/// Larger answers, and answers of unknown size, are given as they are and not kept.
const MAX_BODY: usize = 1 << 20;
/// Smaller answers are not worth compressing.
const MIN_GZIP: usize = 1_024;

#[derive(Clone, Default)]
struct Answers {
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
    /// The body gzip-compressed, when that makes it smaller.
    gzip: Option<Bytes>,
}

impl Entry {
    fn new(version: u64, at_ms: i64, content_type: Option<HeaderValue>, body: Bytes) -> Self {
        let gzip = (body.len() >= MIN_GZIP)
            .then(|| gzip(&body))
            .flatten()
            .filter(|gz| gz.len() < body.len());
        Entry {
            version,
            at_ms,
            content_type,
            body,
            gzip,
        }
    }

    fn response(self, gzip_ok: bool) -> Response {
        let (body, gzipped) = match self.gzip {
            Some(gz) if gzip_ok => (gz, true),
            _ => (self.body, false),
        };
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        if let Some(content_type) = self.content_type {
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        if gzipped {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        response
    }
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(body).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

/// Whether `Accept-Encoding` admits gzip (RFC 9110 §12.5.3: `gzip`, `x-gzip` or `*`, with a
/// quality above zero).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let named = ["gzip", "x-gzip", "*"]
                .iter()
                .any(|c| coding.eq_ignore_ascii_case(c));
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, q)| {
                    k.trim().eq_ignore_ascii_case("q")
                        && q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                })
            });
            named && !refused
        })
}

impl Answers {
    fn get(&self, key: &str, version: u64, now_ms: i64) -> Option<Entry> {
        self.kept(key, version, now_ms, MAX_AGE_MS)
    }

    /// An answer that is too old but from the same database, given while its successor is
    /// being computed.
    fn aged(&self, key: &str, version: u64, now_ms: i64) -> Option<Entry> {
        self.kept(key, version, now_ms, 2 * MAX_AGE_MS)
    }

    /// The answer kept for `key`, if it was computed at `version` less than `max_age_ms` ago.
    fn kept(&self, key: &str, version: u64, now_ms: i64, max_age_ms: i64) -> Option<Entry> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        let age = now_ms - entry.at_ms;
        (entry.version == version && (0..max_age_ms).contains(&age)).then(|| entry.clone())
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

/// The state of the [`reuse`] layer: the answers kept, and where to read the version and
/// the time. One per router.
#[derive(Clone)]
pub struct Cache {
    app: AppState,
    answers: Answers,
}

impl Cache {
    pub fn new(app: AppState) -> Self {
        Self {
            app,
            answers: Answers::default(),
        }
    }
}

/// The layer on [`Reuse::WhileUnchanged`] routes.
pub async fn reuse(State(cache): State<Cache>, request: Request, next: Next) -> Response {
    let key = request.uri().to_string();
    let gzip_ok = accepts_gzip(request.headers());
    let now_ms = cache.app.clock.now_ms();
    // Read before the handler runs: a commit during it makes the answer look old, not new.
    let version = match cache.app.db.version() {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(entry) = cache.answers.get(&key, version, now_ms) {
        return entry.response(gzip_ok);
    }
    let turn = cache.answers.turn(&key);
    let _turn = match turn.clone().try_lock_owned() {
        Ok(turn) => turn,
        Err(_) => {
            if let Some(entry) = cache.answers.aged(&key, version, now_ms) {
                return entry.response(gzip_ok);
            }
            let turn = turn.lock_owned().await;
            // Whoever went before may have just answered the same question.
            if let Some(entry) = cache.answers.get(&key, version, now_ms) {
                return entry.response(gzip_ok);
            }
            turn
        }
    };
    let response = next.run(request).await;
    if response.status() != StatusCode::OK || !fits(response.body()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return ApiError::internal(format!("reading an answer: {e}")).into_response(),
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    let entry = Entry::new(version, now_ms, content_type, body);
    cache.answers.put(key, entry.clone());
    entry.response(gzip_ok)
}

/// Whether a body is known to be small enough to keep. Handlers' JSON and HTML bodies
/// know their exact size; a larger or open-ended body passes through unread, since reading
/// it up to the limit would lose what was read.
fn fits(body: &Body) -> bool {
    body.size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_BODY as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64, at_ms: i64) -> Entry {
        Entry::new(version, at_ms, None, Bytes::from_static(b"{}"))
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
    fn an_aged_answer_is_given_while_its_successor_is_computed_only_if_nothing_changed() {
        let answers = Answers::default();
        answers.put("/a".into(), entry(7, 1_000));
        assert!(answers.aged("/a", 7, 1_000 + MAX_AGE_MS).is_some());
        assert!(answers.aged("/a", 7, 1_000 + 2 * MAX_AGE_MS - 1).is_some());
        assert!(answers.aged("/a", 7, 1_000 + 2 * MAX_AGE_MS).is_none());
        assert!(
            answers.aged("/a", 8, 1_000 + MAX_AGE_MS).is_none(),
            "a commit since"
        );
        assert!(answers.aged("/a", 7, 999).is_none(), "clock moved back");
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        let accepts = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            accepts_gzip(&headers)
        };
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["gzip, deflate, br, zstd"]));
        assert!(accepts(&["br", "GZIP;q=0.5"]));
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["*"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, deflate"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip; q=0.000"]));
        assert!(!accepts(&["gzipped"]));
    }

    #[tokio::test]
    async fn a_large_answer_is_given_gzipped_to_those_who_accept_it() {
        let json =
            serde_json::to_vec(&vec![serde_json::json!({"probe": "x", "up": 1}); 200]).unwrap();
        let entry = Entry::new(
            1,
            0,
            Some(HeaderValue::from_static("application/json")),
            Bytes::from(json.clone()),
        );
        let gzipped = entry.clone().response(true);
        assert_eq!(gzipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gzipped.headers()[header::VARY], "accept-encoding");
        assert_eq!(gzipped.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(gzipped.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            body.len() < json.len() / 4,
            "{} of {}",
            body.len(),
            json.len()
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, json);

        let identity = entry.response(false);
        assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
        let body = axum::body::to_bytes(identity.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body, json);

        let small = Entry::new(1, 0, None, Bytes::from_static(b"{}")).response(true);
        assert!(
            small.headers().get(header::CONTENT_ENCODING).is_none(),
            "small answers are given as they are"
        );
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

    /// An answer too large to keep, or of unknown size, is given whole and not kept; a small
    /// one is kept.
    #[tokio::test]
    async fn answers_that_cannot_be_kept_pass_through_whole() {
        use axum::routing::get;
        use tower::ServiceExt;

        let (_temp, state) = crate::web::tests::state().await;
        let cache = Cache::new(state);
        let big = vec![b'x'; MAX_BODY + 1];
        let app = axum::Router::new()
            .route("/small", get(|| async { "small" }))
            .route("/big", get(move || async move { big }))
            .route(
                "/stream",
                get(|| async {
                    let chunks = ["a", "b"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
                    Body::from_stream(futures_util::stream::iter(chunks))
                }),
            )
            .layer(axum::middleware::from_fn_with_state(cache.clone(), reuse));
        for (uri, len, kept) in [
            ("/small", 5, true),
            ("/big", MAX_BODY + 1, false),
            ("/stream", 2, false),
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body.len(), len, "{uri}");
            let entries = cache.answers.entries.lock().unwrap();
            assert_eq!(entries.contains_key(uri), kept, "{uri}");
        }
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
