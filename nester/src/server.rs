//! `nester serve`: every listener and the periodic jobs, behind one shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::CheckpointKey;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Policy;
use crate::ingest::{self, IngestState};
use crate::net::access_log::{self, AccessLog};
use crate::net::{self, tls};
use crate::pki::{Authorities, Authority};
use crate::state::AppState;
use crate::{jobs, web};

/// How often the audit chain's head is signed when it moved (sooner after 100 entries).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

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

/// Everything `serve` needs, loaded up front so configuration errors surface before binding.
pub struct Server {
    pub state: AppState,
    ingest: IngestState,
    web: axum::Router,
    ingest_tls: tls::Tls,
    ingest_clients: Arc<crate::net::client_roots::ClientRoots>,
    web_tls: tls::Tls,
    retention: Policy,
    audit_key: CheckpointKey,
    audit_checkpoints: std::path::PathBuf,
    /// One per notification channel, secrets read.
    senders: Vec<(String, crate::notify::send::Sender)>,
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
        let retention = config
            .retention
            .policy()
            .context("[retention] is unusable: a duration is too long")?;
        crate::metrics::install();
        crate::pki::rotation::recover(&dir)?;
        crate::pki::renew::recover(&dir)?;
        let authority = Authority::load(&dir)?;
        let trusted = authority.trusted();
        let authorities = Authorities::new(authority);
        let (ingest_tls, ingest_clients) = tls::ingest(&dir, &trusted)?;
        let audit_key = CheckpointKey::load_or_create(&dir)?;
        let state = AppState::new(
            &dir,
            dir.open_database()?,
            authorities,
            config.threats.clone(),
            config.ssh.clone(),
        )?;
        Ok(Self {
            ingest_tls,
            ingest_clients,
            web_tls: tls::web(&dir, &config.web)?,
            ingest: IngestState::new(state.clone(), &config.ingest),
            web: web::router(state.clone(), &config.web)?,
            state,
            retention,
            audit_key,
            audit_checkpoints: dir.audit_checkpoints(),
            senders: crate::notify::senders(&config.notify)?,
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
        let retention = jobs::retention(
            self.state.clone(),
            self.retention,
            self.config.retention.every,
            wait(stopped.clone()),
        );
        let checkpoints = jobs::audit_checkpoints(
            self.state.clone(),
            self.audit_key,
            self.audit_checkpoints,
            CHECKPOINT_EVERY,
            wait(stopped.clone()),
        );
        if let Err(e) = self.state.threats.reload().await {
            tracing::error!(error = format!("{e:#}"), "cannot read the bans");
        }
        let bans = jobs::threats(self.state.clone(), wait(stopped.clone()));
        let engine = crate::alerts::Engine::new(
            self.state.db.clone(),
            self.config.alerts.clone(),
            self.state.dir.clone(),
            self.config.web.cert.clone(),
        );
        let alerts = jobs::alerts(engine, self.config.alerts.every, wait(stopped.clone()));
        let notifier = crate::notify::Notifier::new(
            self.state.db.clone(),
            self.config.notify.clone(),
            Some(self.config.public_web_url(web)),
        );
        let notifications = notifier.run(self.senders, wait(stopped.clone()));
        let served = jobs::Served {
            dir: self.state.dir.clone(),
            clients: self.ingest_clients.clone(),
            ingest: self.ingest_tls.cert.clone(),
            web: self.web_tls.cert.clone(),
            operator_web: self
                .config
                .web
                .cert
                .clone()
                .zip(self.config.web.key.clone()),
            config: self.config.certificates.clone(),
        };
        let certificates = jobs::certificates(self.state.clone(), served, wait(stopped.clone()));
        let backups = async {
            if let Some(backup) = self.config.backup.clone() {
                let (dir, db) = (self.state.dir.clone(), self.state.db.clone());
                crate::backup::schedule::run(dir, backup, db, wait(stopped.clone())).await;
            }
        };
        let (log, lines) = AccessLog::new(self.config.log.access, Some(self.state.threats.clone()));
        let log_writer = async {
            if let Some(lines) = lines {
                let default_dir = self.config.data_dir.join("logs");
                let stop = wait(stopped.clone());
                access_log::write(lines, self.config.log.clone(), default_dir, stop).await;
            }
        };
        let ingest_app = ingest::router(self.ingest);
        // Only web traffic comes through a reverse proxy; harvesters connect directly (mTLS).
        let proxies: Arc<[IpNet]> = self.config.threats.trusted_proxies.clone().into();
        let direct: Arc<[IpNet]> = Arc::new([]);
        let dial = self
            .config
            .public_ingest_address_bound(listeners.ingest_addr().port());
        let web_app = web::with_ingest_address(self.web, dial);
        // Each listener holds its own sender: the writer ends once they are all gone.
        let (mut log_redirect, mut log_metrics, log_ingest, log_web) =
            (Some(log.clone()), Some(log.clone()), log.clone(), log);
        let redirect = async {
            // Taken at once, so the sender goes with the block when there is no listener.
            let log = log_redirect.take();
            if let (Some(plain), Some(log)) = (listeners.redirect, log) {
                let base = self.config.public_web_url(web);
                let app = web::redirect::router(base);
                let stop = wait(stopped.clone());
                net::serve("redirect", plain, None, app, log, proxies.clone(), stop).await;
            }
        };
        let metrics = async {
            // Taken at once, so the sender goes with the block when there is no listener.
            let log = log_metrics.take();
            if let (Some(plain), Some(log)) = (listeners.metrics, log) {
                let app = crate::metrics::router(self.state.clone());
                let stop = wait(stopped.clone());
                net::serve("metrics", plain, None, app, log, direct.clone(), stop).await;
            }
        };
        tokio::join!(
            net::serve(
                "ingest",
                listeners.ingest,
                Some(self.ingest_tls.config),
                ingest_app,
                log_ingest,
                direct.clone(),
                wait(stopped.clone())
            ),
            net::serve(
                "web",
                listeners.web,
                Some(self.web_tls.config),
                web_app,
                log_web,
                proxies.clone(),
                wait(stopped.clone())
            ),
            redirect,
            metrics,
            retention,
            checkpoints,
            log_writer,
            bans,
            alerts,
            notifications,
            certificates,
            backups,
            async move {
                shutdown.await;
                let _ = stop.send(());
            },
        );
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

/// Completes on Ctrl-C or SIGTERM (what systemd sends).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
