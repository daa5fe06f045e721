//! `nester serve`: both listeners, one shutdown.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, RetentionConfig};
use crate::datadir::DataDir;
use crate::state::AppState;
use crate::{ingest, listener, tls, web};

/// The bound sockets, so callers (tests, the demo) can bind port 0 and read the address.
pub struct Listeners {
    pub ingest: TcpListener,
    pub web: TcpListener,
    /// Plain HTTP that only redirects to the web listener, when configured.
    pub redirect: Option<TcpListener>,
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
        Ok(Self {
            ingest: bind(config.ingest.listen, "ingest").await?,
            web: bind(config.web.listen, "web").await?,
            redirect,
        })
    }

    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest
            .local_addr()
            .expect("a bound socket has an address")
    }

    pub fn web_addr(&self) -> SocketAddr {
        self.web
            .local_addr()
            .expect("a bound socket has an address")
    }
}

/// Everything `serve` needs, loaded up front so configuration errors surface before binding.
pub struct Server {
    pub state: AppState,
    ingest_tls: std::sync::Arc<rustls::ServerConfig>,
    web_tls: std::sync::Arc<rustls::ServerConfig>,
    config: Config,
}

impl Server {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let dir = DataDir::new(&config.data_dir);
        anyhow::ensure!(
            dir.is_initialised(),
            "{} is not a nester data directory; create it with `nester init --data-dir {}`",
            dir.root().display(),
            dir.root().display()
        );
        Ok(Self {
            state: AppState::open(config)?,
            ingest_tls: tls::ingest(&dir)?,
            web_tls: tls::web(&dir, &config.web)?,
            config: config.clone(),
        })
    }

    /// Serves until `shutdown` completes, then drains both listeners.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let web = listeners.web_addr();
        tracing::info!(%web, "web listener: dashboard and API, sign-in required");
        match self.state.db.list_users().await {
            Ok(users) if !users.iter().any(|u| !u.disabled) => tracing::warn!(
                "no enabled user: nobody can sign in; add one with `nester user add NAME --role admin`"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the users"),
        }
        let (stop, stopped) = watch::channel(());
        let wait = |mut rx: watch::Receiver<()>| async move {
            let _ = rx.changed().await;
        };
        let retention = retain(
            self.state.clone(),
            self.config.retention.clone(),
            wait(stopped.clone()),
        );
        let ingest_app = ingest::router(self.state.clone());
        let web_app = web::router(self.state);
        let redirect = async {
            if let Some(plain) = listeners.redirect {
                let base = self.config.public_web_url(web);
                let app = web::redirect::router(base);
                listener::serve("redirect", plain, None, app, wait(stopped.clone())).await;
            }
        };
        tokio::join!(
            listener::serve(
                "ingest",
                listeners.ingest,
                Some(self.ingest_tls),
                ingest_app,
                wait(stopped.clone())
            ),
            listener::serve(
                "web",
                listeners.web,
                Some(self.web_tls),
                web_app,
                wait(stopped.clone())
            ),
            redirect,
            retention,
            async move {
                shutdown.await;
                let _ = stop.send(());
            },
        );
    }
}

/// Applies the retention policy at start and then every `config.every`, until `stop`.
async fn retain(state: AppState, config: RetentionConfig, stop: impl Future<Output = ()>) {
    let policy = match config.policy() {
        Ok(policy) => policy,
        Err(e) => {
            return tracing::error!(error = %e, "retention policy unusable: nothing is pruned");
        }
    };
    let passes = async {
        loop {
            let started = std::time::Instant::now();
            match state.db.retain(policy, state.clock.now()).await {
                Ok(done) => tracing::info!(
                    reports_deleted = done.reports_deleted,
                    samples_rolled_up = done.samples_rolled_up,
                    hours_rolled_up = done.hours_rolled_up,
                    pages_freed = done.pages_freed,
                    took_ms = started.elapsed().as_millis() as u64,
                    "retention pass"
                ),
                Err(e) => tracing::error!(error = %e, "retention pass failed; retrying next time"),
            }
            tokio::time::sleep(config.every).await;
        }
    };
    tokio::select! {
        () = passes => {}
        () = stop => {}
    }
}
