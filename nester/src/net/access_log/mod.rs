//! The access log: one JSON line per request on every listener, including connections
//! refused before HTTP (a failed TLS handshake). Each line has the time, listener, client IP,
//! who (user or probe), method, the matched route's pattern (never the raw path or query,
//! which can carry secrets), status, bytes in and out, duration, and a request id that the
//! response also carries (`x-request-id`). Lines travel to the writer (`writer.rs`) over a
//! bounded channel: a request never waits for the log; when the channel is full the line is
//! dropped, counted and warned about.

mod writer;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Destination;
use crate::error::Refusal;
use crate::threat::{Event, Threats};

pub use writer::run as write;

/// One line of the access log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub time: String,
    pub listener: &'static str,
    pub client_ip: IpAddr,
    /// The trusted proxy the request came through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    /// SHA-256 of the client certificate (ingest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// `user:NAME`, `probe:ID`, or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// `-` for a connection refused before HTTP.
    pub method: String,
    /// The matched route's pattern, `-` when none matched or before HTTP.
    pub route: String,
    /// HTTP status; 0 for a connection refused before HTTP.
    pub status: u16,
    /// Why a connection was refused before HTTP (`tls_bad_certificate`, `banned`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<&'static str>,
    /// The error code of a refused request (`probe_revoked`, `token_expired`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

/// Lines that could not be queued (the writer fell behind).
pub const DROPPED: &str = "seahawks_nester_access_log_dropped_total";
const QUEUE: usize = 8192;

/// Where handlers and the accept loop send lines; cheap to clone. `off` keeps no channel.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<Record>>,
    dropped: Arc<AtomicU64>,
    /// Detection reads the same stream.
    threats: Option<Arc<Threats>>,
}

/// The route a request matched, and who made it, as the inner layers tell the outer one.
#[derive(Clone)]
pub struct Matched(pub String);
#[derive(Clone)]
pub struct Who(pub String);

impl AccessLog {
    /// A log (feeding `threats` too) and the receiving end for [`write`]; `None` when `off`.
    pub fn new(
        destination: Destination,
        threats: Option<Arc<Threats>>,
    ) -> (Self, Option<mpsc::Receiver<Record>>) {
        let dropped = Arc::new(AtomicU64::new(0));
        if destination == Destination::Off {
            let log = Self {
                tx: None,
                dropped,
                threats,
            };
            return (log, None);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Self {
                tx: Some(tx),
                dropped,
                threats,
            },
            Some(rx),
        )
    }

    /// Whether the accept loop must close a connection from `ip` at once.
    pub fn banned(&self, ip: IpAddr) -> bool {
        self.threats.as_ref().is_some_and(|t| t.banned(ip))
    }

    /// The banned prefixes the kernel should drop, as they change (see `kernel_filter`).
    pub fn kernel_bans(&self) -> Option<tokio::sync::watch::Receiver<Arc<[ipnet::IpNet]>>> {
        self.threats.as_ref().map(|t| t.kernel_bans())
    }

    /// Queues `record` (and shows it to detection), never waiting.
    pub fn send(&self, record: Record) {
        if let Some(threats) = &self.threats {
            threats.observe(&Event {
                ip: record.client_ip,
                refused: record.refused,
                method: &record.method,
                route: &record.route,
                status: record.status,
                code: record.code,
                who: record.who.as_deref(),
            });
        }
        let Some(tx) = &self.tx else { return };
        if tx.try_send(record).is_err() {
            metrics::counter!(DROPPED).increment(1);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "access log lines dropped: the writer cannot keep up"
                );
            }
        }
    }

    /// A connection refused before any HTTP (or, behind the trusted proxy `via`, a request
    /// refused before routing), for `reason`.
    pub fn refused(
        &self,
        listener: &'static str,
        ip: IpAddr,
        via: Option<IpAddr>,
        reason: &'static str,
        took: Duration,
    ) {
        self.send(Record {
            time: now(),
            listener,
            client_ip: ip,
            via,
            certificate: None,
            who: None,
            method: "-".into(),
            route: "-".into(),
            status: 0,
            refused: Some(reason),
            code: None,
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: took.as_secs_f64() * 1000.0,
            request_id: String::new(),
        });
    }
}

fn now() -> String {
    crate::clock::rfc3339(time::OffsetDateTime::now_utc())
}

/// A request id: 16 random hex digits.
fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Random at start, then counted: unique per process run, cheap per request.
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| {
        let mut bytes = [0; 8];
        aws_lc_rs::rand::fill(&mut bytes).map_or(0, |()| u64::from_le_bytes(bytes))
    });
    format!(
        "{:016x}",
        base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
    )
}

/// The outer layer of every router: times the request, gives it an id (also in the
/// response), and logs one line when the response head is ready.
pub async fn layer(
    axum::extract::State((log, listener)): axum::extract::State<(AccessLog, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    let peer = request.extensions().get::<super::Peer>().cloned();
    let method = request.method().to_string();
    let bytes_in = length(request.headers());
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let Some(peer) = peer else { return response };
    let who = response
        .extensions()
        .get::<Who>()
        .map(|w| w.0.clone())
        .or_else(|| peer.probe_id.map(|p| format!("probe:{p}")));
    let route = response
        .extensions()
        .get::<Matched>()
        .map_or_else(|| "-".to_string(), |m| m.0.clone());
    let bytes_out = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .unwrap_or_else(|| length(response.headers()));
    log.send(Record {
        time: now(),
        listener,
        client_ip: peer.addr.ip(),
        via: peer.via,
        certificate: peer.certificate,
        who,
        method,
        route,
        status: response.status().as_u16(),
        refused: None,
        code: response.extensions().get::<Refusal>().map(|r| r.0),
        bytes_in,
        bytes_out,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        request_id: id,
    });
    response
}

fn length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
