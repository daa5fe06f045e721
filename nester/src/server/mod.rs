//! `nester serve`: every listener and the jobs, behind one shutdown.

mod listeners;
mod signal;

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use ipnet::IpNet;
use tokio::sync::watch;

pub use listeners::{Listeners, serve};
pub use signal::shutdown_signal;

use crate::config::Config;
use crate::datadir::DataDir;
use crate::ingest::{self, IngestState};
use crate::net::access_log::{self, AccessLog};
use crate::net::{self, tls};
use crate::pki::{Authorities, Authority};
use crate::state::AppState;
use crate::{job, jobs, web};

/// Everything `serve` needs, loaded up front so configuration errors surface before binding.
pub struct Server {
    pub state: AppState,
    ingest: IngestState,
    web: axum::Router,
    ingest_tls: tls::Tls,
    web_tls: tls::Tls,
    jobs: jobs::Parts,
    config: Config,
}

impl Server {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let dir = DataDir::new(&config.data_dir).initialised()?;
        crate::metrics::install();
        crate::pki::rotation::recover(&dir)?;
        crate::pki::renew::recover(&dir)?;
        let authority = Authority::load(&dir)?;
        let (ingest_tls, clients) = tls::ingest(&dir, &authority.trusted())?;
        let web_tls = tls::web(&dir, &config.web)?;
        let (threats, ssh) = (config.threats.clone(), config.ssh.clone());
        let db = dir.open_database()?;
        let state = AppState::new(&dir, db, Authorities::new(authority), threats, ssh)?;
        let served = [ingest_tls.cert.clone(), web_tls.cert.clone()];
        let jobs = jobs::Parts::open(&dir, config, clients, served)?;
        Ok(Self {
            ingest: IngestState::new(state.clone(), &config.ingest),
            web: web::router(state.clone(), &config.web)?,
            state,
            ingest_tls,
            web_tls,
            jobs,
            config: config.clone(),
        })
    }

    /// Serves until `shutdown` completes, then drains the listeners and ends the jobs.
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) {
        let (state, config) = (self.state, self.config);
        let web_addr = listeners.web_addr();
        tracing::info!(web = %web_addr, "web listener: dashboard and API, sign-in required");
        state.warn_at_start().await;
        let (stop, stopped) = watch::channel(());
        let wait = || job::stopped(stopped.clone());
        let jobs = jobs::all(&state, &config, self.jobs, config.public_web_url(web_addr));
        let (log, lines) = AccessLog::new(config.log.access, Some(state.threats.clone()));
        // Only web traffic comes through a reverse proxy; harvesters connect directly (mTLS).
        let proxies: Arc<[IpNet]> = config.threats.trusted_proxies.clone().into();
        let direct: Arc<[IpNet]> = Arc::new([]);
        let dial = config.public_ingest_address_bound(listeners.ingest_addr().port());
        let ingest_app = ingest::router(self.ingest);
        let web_app = web::with_ingest_address(self.web, dial);
        let (ingest_tls, web_tls) = (Some(self.ingest_tls.config), Some(self.web_tls.config));
        // Each listener holds its own sender of the access log: its writer ends once they
        // are all gone.
        let serve = |name, socket, tls, app, proxies| -> BoxFuture<'static, ()> {
            Box::pin(net::serve(
                name,
                socket,
                tls,
                app,
                log.clone(),
                proxies,
                wait(),
            ))
        };
        let mut services = vec![
            serve(
                "ingest",
                listeners.ingest,
                ingest_tls,
                ingest_app,
                direct.clone(),
            ),
            serve("web", listeners.web, web_tls, web_app, proxies.clone()),
        ];
        if let Some(plain) = listeners.redirect {
            let app = web::redirect::router(config.public_web_url(web_addr));
            services.push(serve("redirect", plain, None, app, proxies));
        }
        if let Some(plain) = listeners.metrics {
            let app = crate::metrics::router(state.clone());
            services.push(serve("metrics", plain, None, app, direct));
        }
        drop(log);
        let log_writer = async {
            if let Some(lines) = lines {
                access_log::write(lines, config.log.clone(), state.dir.logs(), wait()).await;
            }
        };
        tokio::join!(
            futures_util::future::join_all(services),
            job::run_all(jobs, stopped.clone()),
            log_writer,
            async move {
                shutdown.await;
                let _ = stop.send(());
            },
        );
    }
}
