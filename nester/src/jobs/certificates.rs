//! The certificates job: every `check_every` (and at start, and when the files change) it
//! takes up a CA rotation started or ended by `nester ca` or `nester ssh`, and ends its overlap
//! when due; renews the nester's own listener certificates when `pki::renew::Life::due` says
//! so, and serves the new ones at once; reloads an operator's web certificate when its files
//! change (watched, and compared at each check).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures_util::future::BoxFuture;

use crate::datadir::{DataDir, Listener};
use crate::db::audit::{Actor, Change};
use crate::job::{Job, Pace, Work};
use crate::net::client_roots::ClientRoots;
use crate::net::served_cert::ServedCert;
use crate::pki::renew::Life;
use crate::state::AppState;

/// The listeners' certificates, as the certificates job sees them.
pub struct Served {
    pub dir: DataDir,
    /// The CAs the ingest listener accepts client certificates from.
    pub clients: Arc<ClientRoots>,
    pub ingest: Arc<ServedCert>,
    pub web: Arc<ServedCert>,
    /// The operator's web certificate and key files, when `[web] cert` names them: reloaded
    /// when they change, never renewed here.
    pub operator_web: Option<(PathBuf, PathBuf)>,
    pub config: crate::config::CertificatesConfig,
}

/// The job, woken by changes in the PKI directory and the operator's certificate's.
pub fn job(state: AppState, served: Served) -> Job {
    let wake = Arc::new(tokio::sync::Notify::new());
    let watcher = watch(&served, wake.clone());
    let operator_stamp = served
        .operator_web
        .as_ref()
        .and_then(|(c, k)| stamp_of(c, k));
    let period = served.config.check_every;
    let work = Certificates {
        state,
        served,
        operator_stamp,
        _watcher: watcher,
    };
    // Let a writer (`nester ca`, an ACME client) finish its files.
    Job::new("certificates", period, work)
        .at_start()
        .woken_by(wake, Duration::from_millis(300))
}

/// Events only say "look again"; the watcher lives as long as the job.
fn watch(served: &Served, wake: Arc<tokio::sync::Notify>) -> Option<::notify::RecommendedWatcher> {
    use ::notify::Watcher;
    let mut watcher = ::notify::recommended_watcher(move |_: ::notify::Result<::notify::Event>| {
        wake.notify_one();
    })
    .ok()?;
    let pki = served.dir.ca_cert();
    let operator = served.operator_web.iter().flat_map(|(c, k)| [c, k]);
    // Directories: editors and ACME clients replace files by renaming.
    for file in std::iter::once(&pki).chain(operator) {
        if let Some(parent) = file.parent() {
            let _ = watcher.watch(parent, ::notify::RecursiveMode::NonRecursive);
        }
    }
    Some(watcher)
}

struct Certificates {
    state: AppState,
    served: Served,
    operator_stamp: Stamp,
    _watcher: Option<::notify::RecommendedWatcher>,
}

impl Work for Certificates {
    fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>> {
        Box::pin(self.check())
    }
}

impl Certificates {
    /// Each part's failure is logged and retried at the next check; the others still run.
    async fn check(&mut self) -> anyhow::Result<Pace> {
        let (state, served) = (&self.state, &self.served);
        if let Err(e) = take_up_rotation(state, served).await {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot take up the CA rotation; retrying at the next check"
            );
        }
        if let Err(e) = state.ssh.take_up(&state.db, state.clock.now_ms()).await {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot take up the SSH CA rotation; retrying at the next check"
            );
        }
        for (listener, cert) in [
            (Listener::Ingest, &served.ingest),
            (Listener::Web, &served.web),
        ] {
            if listener == Listener::Web && served.operator_web.is_some() {
                continue;
            }
            if let Err(e) = renew_if_due(state, served, listener, cert).await {
                tracing::error!(
                    listener = listener.name(),
                    error = format!("{e:#}"),
                    "cannot renew the listener's certificate; retrying at the next check"
                );
            }
        }
        if let Some((cert, key)) = &served.operator_web {
            let stamp = stamp_of(cert, key);
            if stamp != self.operator_stamp {
                match served.web.reload(cert, key) {
                    Ok(()) => {
                        self.operator_stamp = stamp_of(cert, key);
                        tracing::info!(cert = %cert.display(), "web certificate reloaded from its files");
                    }
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "the web certificate files do not load; still serving the previous certificate"
                    ),
                }
            }
            warn_if_late(state, "web (operator's)", &served.web);
        }
        Ok(Pace::Period)
    }
}

type Stamp = Option<(SystemTime, SystemTime)>;

fn stamp_of(cert: &Path, key: &Path) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(cert)?, modified(key)?))
}

fn warn_if_late(state: &AppState, name: &str, cert: &ServedCert) {
    let now = state.clock.now_ms();
    if let Some(life) = cert.leaf().and_then(|l| Life::of(&l))
        && life.late(now)
    {
        tracing::error!(
            certificate = name,
            expires_in = %crate::clock::human(life.end - now),
            "the certificate has under a quarter of its life left and has not been renewed"
        );
    }
}

async fn renew_if_due(
    state: &AppState,
    served: &Served,
    listener: Listener,
    cert: &ServedCert,
) -> anyhow::Result<()> {
    let leaf = cert.leaf().context("no certificate served")?;
    let life = Life::of(&leaf).context("the served certificate is unreadable")?;
    let now = state.clock.now();
    let validity = time::Duration::days(i64::from(served.config.server_days));
    let authority = state.authorities.get();
    let chain = authority.chain_pem();
    let other_chain = cert.chain().get(1..) != Some(authority.chain().as_slice());
    let validity_ms = i64::try_from(validity.whole_milliseconds()).unwrap_or(i64::MAX);
    if !life.due(crate::clock::to_ms(now), validity_ms, other_chain) {
        return Ok(());
    }
    let issued = authority.issuing.renew_server(&leaf, validity, now)?;
    crate::pki::renew::install(&served.dir, listener, &issued, &chain)?;
    cert.replace(&format!("{}{chain}", issued.cert_pem), &issued.key_pem)?;
    let new_leaf = cert.leaf().context("no certificate served")?;
    let fingerprint = shared::identity::fingerprint(&new_leaf);
    let until = Life::of(&new_leaf).map_or(0, |l| l.end);
    tracing::info!(listener = listener.name(), %fingerprint, until_ms = until, "listener certificate renewed");
    let change = Change::new(
        "certificate.renew",
        format!("certificate:{}", listener.name()),
    )
    .with("fingerprint", &fingerprint)
    .with("not_after_ms", until)
    .with("previous", shared::identity::fingerprint(&leaf));
    state.db.audit(Actor::server(), change).await?;
    Ok(())
}

/// Ends a rotation's overlap when due, and serves with the CAs on disk when they changed (a
/// rotation started or ended by `nester ca`, or just ended here). The new roots are trusted
/// before the new CA issues anything, so no certificate it signs is ever refused.
async fn take_up_rotation(state: &AppState, served: &Served) -> anyhow::Result<()> {
    use crate::pki::Authority;
    if let Some(ended) = crate::pki::rotation::retire_if_due(&served.dir, state.clock.now_ms())? {
        tracing::info!(previous = %ended.previous_sha256, "CA rotation over: the previous CA is retired");
        let change = Change::new("ca.retire", format!("ca:{}", ended.previous_sha256))
            .with("issuing", &ended.issuing_sha256);
        state.db.audit(Actor::server(), change).await?;
    }
    let current = state.authorities.get();
    let fresh = Authority::load(&served.dir)?;
    if fresh.stamp() == current.stamp() {
        return Ok(());
    }
    let trusted = fresh.trusted();
    served.clients.replace(&trusted)?;
    state.verifier.set_roots(trusted)?;
    tracing::info!(
        issuing = %fresh.issuing.cert.fingerprint(),
        previous = ?fresh.previous().map(crate::pki::CaCert::fingerprint),
        "serving with the CAs on disk (a rotation started or ended)"
    );
    state.authorities.set(fresh);
    Ok(())
}
