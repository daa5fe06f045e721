//! The bound sockets of `nester serve` (tests and the demo bind port 0 and read the
//! address), and `serve` itself: bind, say where, serve until a signal.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use super::{Server, shutdown_signal};
use crate::config::Config;

/// The bound sockets, so callers (tests, the demo) can bind port 0 and read the address.
pub struct Listeners {
    pub ingest: TcpListener,
    pub web: TcpListener,
    /// Plain HTTP that only redirects to the web listener, when configured.
    pub redirect: Option<TcpListener>,
    /// Plain HTTP for Prometheus, when configured.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} ({what})"))
        };
        let redirect = match config.web.redirect_http {
            Some(addr) => Some(bind(addr, "redirect to HTTPS").await?),
            None => None,
        };
        let metrics = match &config.metrics {
            Some(m) => Some(bind(m.listen, "metrics").await?),
            None => None,
        };
        Ok(Self {
            ingest: bind(config.ingest.listen, "ingest").await?,
            web: bind(config.web.listen, "web").await?,
            redirect,
            metrics,
        })
    }

    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    #[allow(clippy::expect_used, reason = "a bound socket has an address")]
    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest
            .local_addr()
            .expect("a bound socket has an address")
    }

    #[allow(clippy::expect_used, reason = "a bound socket has an address")]
    pub fn web_addr(&self) -> SocketAddr {
        self.web
            .local_addr()
            .expect("a bound socket has an address")
    }
}

/// `nester serve`: binds the configured addresses, says where, and serves until Ctrl-C or
/// SIGTERM.
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    let server = Server::open(config)?;
    let listeners = Listeners::bind(config).await?;
    println!("dashboard: https://{}/", listeners.web_addr());
    println!("ingest: {}", listeners.ingest_addr());
    if let Some(plain) = listeners.redirect_addr() {
        println!("redirect: http://{plain}/ (to HTTPS)");
    }
    if let Some(metrics) = listeners.metrics_addr() {
        println!("metrics: http://{metrics}/metrics");
    }
    server.run(listeners, shutdown_signal()).await;
    Ok(())
}
