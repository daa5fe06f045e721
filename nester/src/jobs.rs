//! Periodic work beside the listeners, each job a loop that ends with the server's shutdown:
//! the retention pass, the audit log's checkpoints, bans and security alerts, and the
//! monitoring alerts' evaluation.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::audit::{CheckpointKey, checkpoint};
use crate::db::Policy;
use crate::state::AppState;

/// Applies the retention policy at start and then `every` after each pass, until `stop`.
pub async fn retention(
    state: AppState,
    policy: Policy,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
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
            tokio::time::sleep(every).await;
        }
    };
    tokio::select! {
        () = passes => {}
        () = stop => {}
    }
}

/// Signs a checkpoint of the audit chain's head when it moved: at most every `every` (a
/// minute in service) and as soon as [`CHECKPOINT_ENTRIES`] entries are unsigned, and once
/// more at shutdown. Each goes to `checkpoints` (a file outside the database).
pub async fn audit_checkpoints(
    state: AppState,
    key: CheckpointKey,
    checkpoints: PathBuf,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut signed = match checkpoint::read_all(&checkpoints) {
        Ok(all) => all.last().map_or(-1, |c| c.seq),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot read the audit checkpoints"
            );
            -1
        }
    };
    let mut last_time = std::time::Instant::now();
    let write = |head: (i64, Vec<u8>), signed: &mut i64| {
        let time = crate::clock::rfc3339(state.clock.now());
        match checkpoint::append(&checkpoints, &key.sign(head.0, &head.1, &time)) {
            Ok(()) => *signed = head.0,
            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot write an audit checkpoint"),
        }
    };
    let poll = Duration::from_millis(500).min(every);
    let ticks = async {
        loop {
            match state.db.audit_head().await {
                Ok(head) if head.0 > signed => {
                    if head.0 - signed >= CHECKPOINT_ENTRIES || last_time.elapsed() >= every {
                        write(head, &mut signed);
                        last_time = std::time::Instant::now();
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the audit head"),
            }
            tokio::time::sleep(poll).await;
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
    match state.db.audit_head().await {
        Ok(head) if head.0 > signed => write(head, &mut signed),
        _ => {}
    }
}

/// Unsigned entries that call for a checkpoint without waiting for the minute.
pub const CHECKPOINT_ENTRIES: i64 = 100;

/// Every couple of seconds: reads the bans again, so `nester ban add|remove` from another
/// process reaches the accept loop and ended bans leave it, and writes the security alerts
/// detection noted, and resolves those that went quiet.
pub async fn threats(state: AppState, stop: impl Future<Output = ()>) {
    let ticks = async {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = state.threats.reload().await {
                tracing::warn!(error = format!("{e:#}"), "cannot read the bans");
            }
            if let Err(e) = state.threats.flush_alerts().await {
                tracing::error!(error = format!("{e:#}"), "cannot write security alerts");
            }
            match state.threats.resolve_quiet_alerts().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(resolved = n, "quiet security alerts resolved"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot resolve alerts"),
            }
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
    // What was noted last is not lost at shutdown.
    if let Err(e) = state.threats.flush_alerts().await {
        tracing::error!(error = format!("{e:#}"), "cannot write security alerts");
    }
}

/// Evaluates the alert rules every `every`, until `stop`.
pub async fn alerts(
    engine: crate::alerts::Engine,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let ticks = async {
        loop {
            tokio::time::sleep(every).await;
            match engine.evaluate().await {
                Ok(done) if done.raised + done.resolved > 0 => {
                    tracing::info!(
                        raised = done.raised,
                        resolved = done.resolved,
                        "alerts evaluated"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "alert evaluation failed; retrying next time"
                ),
            }
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
}

/// The listeners' certificates, as the certificates job sees them.
pub struct Served {
    pub dir: crate::datadir::DataDir,
    /// The CAs the ingest listener accepts client certificates from.
    pub clients: std::sync::Arc<crate::net::client_roots::ClientRoots>,
    pub ingest: std::sync::Arc<crate::net::served_cert::ServedCert>,
    pub web: std::sync::Arc<crate::net::served_cert::ServedCert>,
    /// The operator's web certificate and key files, when `[web] cert` names them: reloaded
    /// when they change, never renewed here.
    pub operator_web: Option<(PathBuf, PathBuf)>,
    pub config: crate::config::CertificatesConfig,
}

/// Every `check_every` (and at start, and when the files change): takes up a CA rotation
/// started or ended by `nester ca` or `nester ssh`, and ends its overlap when due; renews the nester's own
/// listener certificates that are two thirds through their life, or not from the issuing CA,
/// and serves the new ones at once; reloads an operator's web certificate when its files
/// change (watched, and compared at each check).
pub async fn certificates(state: AppState, served: Served, stop: impl Future<Output = ()>) {
    use crate::datadir::Listener;
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    // Kept alive while the job runs; events only say "look again".
    let _watcher = {
        use ::notify::Watcher;
        let tx = changed_tx.clone();
        let watcher = ::notify::recommended_watcher(move |_: ::notify::Result<::notify::Event>| {
            let _ = tx.try_send(());
        });
        watcher.ok().map(|mut watcher| {
            let pki = served.dir.ca_cert();
            let operator = served.operator_web.iter().flat_map(|(c, k)| [c, k]);
            // Directories: editors and ACME clients replace files by renaming.
            for file in std::iter::once(&pki).chain(operator) {
                if let Some(parent) = file.parent() {
                    let _ = watcher.watch(parent, ::notify::RecursiveMode::NonRecursive);
                }
            }
            watcher
        })
    };
    let mut operator_stamp = served
        .operator_web
        .as_ref()
        .and_then(|(c, k)| operator_stamp_of(c, k));
    let ticks = async {
        loop {
            if let Err(e) = take_up_rotation(&state, &served).await {
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
                if let Err(e) = renew_if_due(&state, &served, listener, cert).await {
                    tracing::error!(
                        listener = listener.name(),
                        error = format!("{e:#}"),
                        "cannot renew the listener's certificate; retrying at the next check"
                    );
                }
            }
            if let Some((cert, key)) = &served.operator_web {
                let stamp = operator_stamp_of(cert, key);
                if stamp != operator_stamp {
                    match served.web.reload(cert, key) {
                        Ok(()) => {
                            operator_stamp = operator_stamp_of(cert, key);
                            tracing::info!(cert = %cert.display(), "web certificate reloaded from its files");
                        }
                        Err(e) => tracing::error!(
                            error = format!("{e:#}"),
                            "the web certificate files do not load; still serving the previous certificate"
                        ),
                    }
                }
                warn_if_late(&state, "web (operator's)", &served.web);
            }
            tokio::select! {
                () = tokio::time::sleep(served.config.check_every) => {}
                _ = changed.recv() => {
                    // Let a writer (`nester ca`, an ACME client) finish its files.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
}

type Stamp = Option<(std::time::SystemTime, std::time::SystemTime)>;

fn operator_stamp_of(cert: &std::path::Path, key: &std::path::Path) -> Stamp {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(cert)?, modified(key)?))
}

fn warn_if_late(state: &AppState, name: &str, cert: &crate::net::served_cert::ServedCert) {
    let now = state.clock.now_ms();
    if let Some(life) = cert.leaf().and_then(|l| crate::pki::renew::Life::of(&l))
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
    listener: crate::datadir::Listener,
    cert: &crate::net::served_cert::ServedCert,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let leaf = cert.leaf().context("no certificate served")?;
    let life =
        crate::pki::renew::Life::of(&leaf).context("the served certificate is unreadable")?;
    let now = state.clock.now();
    let validity = time::Duration::days(i64::from(served.config.server_days));
    // Due at two thirds, or at once when it was issued for longer than the policy allows now
    // (a data directory from before 90-day certificates, or a shorter `server_days`).
    let too_long = life.end - life.start
        > i64::try_from(validity.whole_milliseconds()).unwrap_or(i64::MAX) + 86_400_000;
    // And at once when the CAs changed (a rotation started or ended).
    let authority = state.authorities.get();
    let chain = authority.chain_pem();
    let other_chain = cert.chain().get(1..) != Some(authority.chain().as_slice());
    if crate::clock::to_ms(now) < life.renew_at() && !too_long && !other_chain {
        return Ok(());
    }
    let issued = authority.issuing.renew_server(&leaf, validity, now)?;
    crate::pki::renew::install(&served.dir, listener, &issued, &chain)?;
    cert.replace(&format!("{}{chain}", issued.cert_pem), &issued.key_pem)?;
    let new_leaf = cert.leaf().context("no certificate served")?;
    let fingerprint = shared::identity::fingerprint(&new_leaf);
    let until = crate::pki::renew::Life::of(&new_leaf).map_or(0, |l| l.end);
    tracing::info!(listener = listener.name(), %fingerprint, until_ms = until, "listener certificate renewed");
    let change = crate::db::audit::Change::new(
        "certificate.renew",
        format!("certificate:{}", listener.name()),
    )
    .with("fingerprint", &fingerprint)
    .with("not_after_ms", until)
    .with("previous", shared::identity::fingerprint(&leaf));
    state
        .db
        .audit(crate::db::audit::Actor::server(), change)
        .await?;
    Ok(())
}

/// Ends a rotation's overlap when due, and serves with the CAs on disk when they changed (a
/// rotation started or ended by `nester ca`, or just ended here). The new roots are trusted
/// before the new CA issues anything, so no certificate it signs is ever refused.
async fn take_up_rotation(state: &AppState, served: &Served) -> anyhow::Result<()> {
    use crate::db::audit::{Actor, Change};
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
