//! The accept loop every listener shares: TLS (ingest, web) or plain HTTP (the optional
//! redirect to HTTPS).
//!
//! Each accepted socket gets its own task; the TLS handshake runs there under a timeout, so
//! a stalled or hostile client never blocks the loop or anyone else. The peer's address and,
//! on mTLS, its probe id reach handlers as a [`Peer`] request extension.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use uuid::Uuid;

use crate::error::ApiError;
use crate::net::access_log::{self, AccessLog};
use crate::net::{forwarded, kernel_filter};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client: the connection's far end, or the client a trusted proxy forwarded for
    /// (then with port 0).
    pub addr: SocketAddr,
    /// The trusted proxy the request came through, if any.
    pub via: Option<IpAddr>,
    /// SHA-256 of the client certificate (ingest only).
    pub certificate: Option<String>,
    /// The probe named by the client certificate (ingest only).
    pub probe_id: Option<Uuid>,
    /// The probe's standing (site, revoked), looked up once per connection (see
    /// `ingest::ProbeIdentity`).
    pub standing: Arc<tokio::sync::OnceCell<Option<(String, bool)>>>,
}

/// Serves `app` on `listener`, over TLS when `tls` is given, until `shutdown` completes, then
/// drains connections. `X-Forwarded-For` is believed from `proxies` only (see `forwarded`).
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    log: AccessLog,
    proxies: Arc<[IpNet]>,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(axum::middleware::from_fn_with_state(
        (log.clone(), name),
        access_log::layer,
    ));
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let builder = Arc::new(builder);
    let mut kernel = log.kernel_bans();
    if let Some(rx) = kernel.as_mut() {
        rx.mark_changed();
    }
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            () = &mut shutdown => break,
            prefixes = kernel_bans_changed(&mut kernel) => {
                let dropped = prefixes.len();
                match kernel_filter::install(socket2::SockRef::from(&listener), &prefixes) {
                    Ok(()) => tracing::info!(listener = name, dropped, "kernel filter of banned floods updated"),
                    Err(e) => tracing::warn!(listener = name, error = %e, "cannot install the kernel filter; banned floods stay with the accept loop"),
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Banned: closed before a byte is read or sent, let alone a ServerHello. A reset, not
        // a FIN: the attacker's connections leave no TIME_WAIT state behind here.
        if log.banned(addr.ip()) {
            let _ = tcp.set_zero_linger();
            drop(tcp);
            log.refused(name, addr.ip(), None, "banned", Duration::ZERO);
            continue;
        }
        // Small responses must not wait for delayed ACKs (Nagle): 40 ms per request otherwise.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(listener = name, error = %e, "cannot set TCP_NODELAY");
        }
        let (acceptor, app, builder, watcher, log, proxies) = (
            acceptor.clone(),
            app.clone(),
            builder.clone(),
            graceful.watcher(),
            log.clone(),
            proxies.clone(),
        );
        tokio::spawn(async move {
            let accepted = std::time::Instant::now();
            let _open = OpenConnection::new(name);
            let Some(acceptor) = acceptor else {
                let peer = Peer {
                    addr,
                    via: None,
                    certificate: None,
                    probe_id: None,
                    standing: Arc::default(),
                };
                let http = Http {
                    name,
                    builder: &builder,
                    app,
                    log,
                    proxies,
                };
                return http.serve(tcp, peer, watcher).await;
            };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                // A client that connects and leaves (a port scan, a health check) is not news.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    handshake_failed(name, "closed");
                    log.refused(name, addr.ip(), None, "tls_closed", accepted.elapsed());
                    tracing::debug!(listener = name, client_ip = %addr.ip(), "connection closed before the TLS handshake");
                    return;
                }
                Ok(Err(e)) => {
                    let reason = handshake_failure(&e);
                    handshake_failed(name, reason);
                    log.refused(name, addr.ip(), None, refusal(reason), accepted.elapsed());
                    tracing::info!(listener = name, client_ip = %addr.ip(), error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    handshake_failed(name, "timeout");
                    log.refused(name, addr.ip(), None, "tls_timeout", accepted.elapsed());
                    tracing::info!(listener = name, client_ip = %addr.ip(), "TLS handshake timed out");
                    return;
                }
            };
            let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let peer = Peer {
                addr,
                via: None,
                certificate: leaf.map(|cert| shared::identity::fingerprint(cert)),
                probe_id: leaf.and_then(|cert| shared::identity::probe_id_from_cert(cert).ok()),
                standing: Arc::default(),
            };
            let http = Http {
                name,
                builder: &builder,
                app,
                log,
                proxies,
            };
            http.serve(tls, peer, watcher).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after {DRAIN_TIMEOUT:?}; closing them"
        );
    }
}

/// The next set of prefixes the kernel should drop (the current one first); never, once the
/// sender is gone.
async fn kernel_bans_changed(
    rx: &mut Option<tokio::sync::watch::Receiver<Arc<[IpNet]>>>,
) -> Arc<[IpNet]> {
    let Some(receiver) = rx else {
        return std::future::pending().await;
    };
    if receiver.changed().await.is_err() {
        *rx = None;
        return std::future::pending().await;
    }
    receiver.borrow_and_update().clone()
}

/// Metrics of the accept loop (described with the others in `crate::metrics`).
pub const CONNECTIONS_ACTIVE: &str = "seahawks_nester_connections_active";
pub const TLS_HANDSHAKE_FAILURES: &str = "seahawks_nester_tls_handshake_failures_total";

/// Counts an open connection of a listener while it lives.
struct OpenConnection(&'static str);

impl OpenConnection {
    fn new(listener: &'static str) -> Self {
        metrics::gauge!(CONNECTIONS_ACTIVE, "listener" => listener).increment(1.0);
        Self(listener)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_ACTIVE, "listener" => self.0).decrement(1.0);
    }
}

fn handshake_failed(listener: &'static str, reason: &'static str) {
    metrics::counter!(TLS_HANDSHAKE_FAILURES, "listener" => listener, "reason" => reason)
        .increment(1);
}

/// The access log's word for a handshake that failed for `reason`.
fn refusal(reason: &'static str) -> &'static str {
    match reason {
        "no_client_certificate" => "tls_no_client_certificate",
        "bad_certificate" => "tls_bad_certificate",
        "not_tls" => "tls_not_tls",
        "incompatible" => "tls_incompatible",
        "client_alert" => "tls_client_alert",
        _ => "tls_other",
    }
}

/// Why a handshake failed, in a word for the metric: a fixed set, whatever the client sent.
fn handshake_failure(e: &std::io::Error) -> &'static str {
    use rustls::Error;
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::NoCertificatesPresented) => "no_client_certificate",
        Some(Error::InvalidCertificate(_)) => "bad_certificate",
        Some(
            Error::InvalidMessage(_)
            | Error::InappropriateMessage { .. }
            | Error::InappropriateHandshakeMessage { .. },
        ) => "not_tls",
        Some(Error::PeerIncompatible(_)) => "incompatible",
        Some(Error::AlertReceived(_)) => "client_alert",
        _ => "other",
    }
}

/// HTTP on one accepted stream, plain or TLS.
struct Http<'a> {
    name: &'static str,
    builder: &'a auto::Builder<TokioExecutor>,
    app: Router,
    log: AccessLog,
    proxies: Arc<[IpNet]>,
}

impl Http<'_> {
    /// Serves the stream with `peer` on every request: the client a trusted proxy forwarded
    /// for, if so, refused at once when banned (the accept loop only saw the proxy).
    async fn serve<S>(self, stream: S, peer: Peer, watcher: hyper_util::server::graceful::Watcher)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            name,
            builder,
            app,
            log,
            proxies,
        } = self;
        let addr = peer.addr;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let mut peer = peer.clone();
            let client = forwarded::client_ip(peer.addr.ip(), req.headers(), &proxies);
            let mut banned = false;
            if client != peer.addr.ip() {
                peer.via = Some(peer.addr.ip());
                peer.addr = SocketAddr::new(client, 0);
                banned = log.banned(client);
            }
            let via = peer.via;
            req.extensions_mut().insert(peer);
            let (app, log) = (app.clone(), log.clone());
            async move {
                if banned {
                    log.refused(name, client, via, "banned", Duration::ZERO);
                    return Ok(forwarded_banned());
                }
                app.oneshot(req).await
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        if let Err(e) = watcher.watch(conn.into_owned()).await {
            tracing::debug!(listener = name, client_ip = %addr.ip(), error = %e, "connection ended with an error");
        }
    }
}

/// The answer to a banned client behind a trusted proxy, and the end of the connection.
fn forwarded_banned() -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "banned",
        "this address is banned for a while",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}
