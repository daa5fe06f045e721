//! The daemon: scan and spool on an interval, deliver what the spool holds, fetch the CAs to
//! trust and renew the certificate when due (or at once when the nester's CA was rotated).
//!
//! One loop owns the agent and waits on whichever comes first: the next scan, a change in the
//! spool (notify), the periodic rescan (in case an event was missed), the end of a retry
//! backoff, or shutdown.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use hyper::StatusCode;
use notify::Watcher;
use rustls_pki_types::CertificateDer;
use shared::identity::fingerprint;
use shared::protocol::{
    HostCertificateResponse, SSH_HOST_CERTIFICATE_PATH, SSH_TRUST_PATH, SshTrust, TRUST_PATH, code,
};
use shared::trust::SignedTrust;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

use crate::backoff::{Backoff, random_unit};
use crate::config::Config;
use crate::scan::{self, PortSpec};
use crate::spool::{Spool, WhenFull};
use crate::state::{self, Counter, Identity};
use crate::uplink::{Delivery, Uplink, UplinkError};

const RESCAN: Duration = Duration::from_secs(30);

pub struct Agent {
    config: Config,
    ports: PortSpec,
    identity: Identity,
    uplink: Uplink,
    spool: Spool,
    sequence: Counter,
    unsent: Counter,
    backoff: Backoff,
    /// Kept between cycles: the reverse-DNS cache lives here.
    scan_session: scan::Session,
}

/// A report signed and spooled.
#[derive(Debug, Clone)]
pub struct Signed {
    pub report_id: Uuid,
    pub sequence: u64,
    pub jws: String,
}

impl Agent {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let dir = &config.state_dir;
        let identity = Identity::load(dir)?;
        identity.check_current(OffsetDateTime::now_utc())?;
        let spool = Spool::open(dir.join("spool"), config.spool.max_bytes)?;
        let mut sequence = Counter::sequence(dir)?;
        if let Some(newest) = spool
            .pending()?
            .last()
            .filter(|e| e.sequence > sequence.get())
        {
            sequence.set(newest.sequence)?;
        }
        Ok(Self {
            ports: config.ports()?,
            uplink: uplink_for(&config, &identity)?,
            identity,
            spool,
            sequence,
            unsent: Counter::unsent(dir)?,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            scan_session: scan::Session::default(),
            config,
        })
    }

    pub fn probe_id(&self) -> Uuid {
        self.identity.probe_id
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Scans, signs and spools one report. `None` when the spool is full and the policy is
    /// to pause: the skipped report is counted and the total reported with the next one.
    pub async fn produce(&mut self) -> anyhow::Result<Option<Signed>> {
        let started = std::time::Instant::now();
        let options = &self.config.scan.options;
        let scan = &self.config.scan;
        let result = scan::scan(
            &scan.targets,
            Some(&scan.scope),
            &self.ports,
            options,
            &self.scan_session,
        )
        .await?;
        let wan = crate::wan::measure_all(&self.config.wan).await;
        // The number is taken only once the report has a place in the spool, so a report
        // never produced leaves no gap: it is counted in `unsent` instead.
        let sequence = self.sequence.get() + 1;
        let unsent = self.unsent.get();
        let identity = &self.identity;
        let report = crate::report::build(
            identity.probe_id,
            &identity.site,
            sequence,
            unsent,
            self.config.interval,
            result,
            wan,
        );
        let jws = identity.signer()?.sign_report(&report)?;
        let size = jws.len() as u64;
        if !self.spool.has_room(size)? {
            match self.config.spool.when_full {
                WhenFull::Pause => {
                    self.unsent.set(unsent + 1)?;
                    crate::metrics::lost("not_produced", 1);
                    tracing::error!(
                        unsent = unsent + 1,
                        spool = %self.spool.dir().display(),
                        "spool full: report not produced (the nester is unreachable or refusing); counted and reported later"
                    );
                    return Ok(None);
                }
                WhenFull::DropOldest => {
                    let dropped = self.spool.drop_oldest_for(size)?;
                    // Counted in the next report: this one was signed with the old total.
                    self.unsent.set(unsent + dropped)?;
                    crate::metrics::lost("dropped_oldest", dropped);
                    tracing::error!(
                        dropped,
                        "spool full: dropped the oldest unsent reports to make room"
                    );
                }
            }
        }
        // Spooled first, counted second: a crash in between is repaired at the next start
        // (the counter never lags the spool; see `new`), so no number is lost or reused.
        self.spool.put(sequence, jws.as_bytes())?;
        self.sequence.reserve()?;
        crate::metrics::spooled(&report, started.elapsed());
        Ok(Some(Signed {
            report_id: report.report_id,
            sequence,
            jws,
        }))
    }

    /// Delivers spooled reports, oldest first, deleting each only once acknowledged. Stops at
    /// the first failure that a retry may fix. A report refused for good moves to `rejected/`.
    pub async fn drain(&mut self) -> anyhow::Result<Vec<(u64, Delivery)>> {
        let mut delivered = Vec::new();
        for entry in self.spool.pending()? {
            let jws = self.spool.read(&entry)?;
            match self.uplink.send(jws).await {
                Ok(delivery) => {
                    self.spool.remove(&entry)?;
                    state::record_upload(&self.config.state_dir, OffsetDateTime::now_utc())?;
                    crate::metrics::delivered();
                    delivered.push((entry.sequence, delivery));
                }
                Err(e) if refused_for_good(&e) => {
                    let to = self.spool.reject(&entry)?;
                    crate::metrics::lost("rejected", 1);
                    tracing::error!(sequence = entry.sequence, error = %e, moved_to = %to.display(), "the nester refused a report for good");
                }
                Err(e) => {
                    crate::metrics::upload_failed(&e);
                    return Err(e)
                        .with_context(|| format!("while delivering report #{}", entry.sequence));
                }
            }
        }
        Ok(delivered)
    }

    /// Fetches the nester's signed trust bundle and adopts it when it changed (it must be
    /// signed by a CA trusted now): during a CA rotation it adds the new CA, at its end it
    /// drops the old one. Returns the CA the nester issues from.
    pub async fn refresh_trust(&mut self) -> anyhow::Result<Option<String>> {
        let signed: SignedTrust = match self.uplink.get_json(TRUST_PATH).await {
            Ok(signed) => signed,
            // A nester from before trust bundles.
            Err(UplinkError::Refused { status, .. }) if status == StatusCode::NOT_FOUND => {
                return Ok(None);
            }
            Err(e) => return Err(e).context("cannot fetch the trust bundle"),
        };
        let bundle = signed.open(&self.identity.trust).context(
            "the nester's trust bundle is refused; if its CA was rotated while this \
                 harvester was offline, enroll it again",
        )?;
        let cas = bundle.certificates()?;
        let fingerprints = |cas: &[CertificateDer<'_>]| {
            let mut all: Vec<String> = cas.iter().map(|c| fingerprint(c)).collect();
            all.sort();
            all
        };
        if fingerprints(&cas) != fingerprints(&self.identity.trust) {
            state::save_trust(&self.config.state_dir, &bundle.cas.concat())?;
            self.reload_identity()?;
            tracing::info!(version = %bundle.version, cas = cas.len(), issuing = %bundle.issuing_sha256, "trust bundle updated");
        }
        Ok(Some(bundle.issuing_sha256))
    }

    /// Keeps the box's sshd trust (`[ssh]`) as the nester has it: user CA keys and the KRL,
    /// and, with `host_key`, the box's host certificate. Returns the trust version
    /// installed, if the section is there.
    pub async fn refresh_ssh_trust(&mut self) -> anyhow::Result<Option<u64>> {
        let Some(config) = self.config.ssh.clone() else {
            return Ok(None);
        };
        let path = match crate::ssh_trust::installed_version(&config) {
            Some(held) => format!("{SSH_TRUST_PATH}?held={held}"),
            None => SSH_TRUST_PATH.to_string(),
        };
        let trust: SshTrust = self
            .uplink
            .get_json(&path)
            .await
            .context("cannot fetch the SSH trust")?;
        let version = trust.version;
        let installing = config.clone();
        let changed =
            tokio::task::spawn_blocking(move || crate::ssh_trust::install(&installing, &trust))
                .await??;
        if changed {
            tracing::info!(version, "SSH trust installed (user CA keys, revoked keys)");
        }
        self.refresh_host_certificate(config, version).await?;
        Ok(Some(version))
    }

    /// Has the box's host key certified (`[ssh] host_key`) and installs the certificate when
    /// it changed.
    async fn refresh_host_certificate(
        &mut self,
        config: crate::config::SshTrustConfig,
        trust_version: u64,
    ) -> anyhow::Result<()> {
        if config.host_key.is_none() {
            return Ok(());
        }
        let nester = ingest_address(&self.config)?;
        let asking = config.clone();
        let Some(request) = tokio::task::spawn_blocking(move || {
            crate::ssh_host::request(&asking, &nester, Some(trust_version))
        })
        .await??
        else {
            return Ok(());
        };
        let response: HostCertificateResponse = self
            .uplink
            .post_json(SSH_HOST_CERTIFICATE_PATH, &request)
            .await
            .context("cannot get the box's SSH host certificate")?;
        let principals = response.principals.join(" ");
        let changed =
            tokio::task::spawn_blocking(move || crate::ssh_host::install(&config, &response))
                .await??;
        if changed {
            tracing::info!(%principals, "SSH host certificate installed");
        }
        Ok(())
    }

    fn reload_identity(&mut self) -> anyhow::Result<()> {
        let identity = Identity::load(&self.config.state_dir)?;
        self.uplink = uplink_for(&self.config, &identity)?;
        self.identity = identity;
        Ok(())
    }

    /// Renews the certificate when `now` is past its renewal time (two thirds of its life),
    /// or when it is not from `issuing`, the CA the nester issues from (a rotation).
    pub async fn renew_if_due(
        &mut self,
        now: OffsetDateTime,
        issuing: Option<&str>,
    ) -> anyhow::Result<bool> {
        self.identity.check_current(now)?;
        let rotated = issuing.is_some_and(|ca| ca != fingerprint(&self.identity.ca));
        if now < self.identity.renew_at() && !rotated {
            return Ok(false);
        }
        let identity = crate::enroll::renew(&self.config.state_dir, &mut self.uplink).await?;
        tracing::info!(expires = %identity.not_after, "certificate renewed");
        self.uplink = uplink_for(&self.config, &identity)?;
        self.identity = identity;
        Ok(true)
    }

    /// One full cycle, for tests and one-shot use: renew if due, deliver the backlog, produce,
    /// deliver the new report. Returns the new report with how it was delivered.
    pub async fn cycle(&mut self) -> anyhow::Result<(Signed, Delivery)> {
        let issuing = self.refresh_trust().await?;
        self.renew_if_due(OffsetDateTime::now_utc(), issuing.as_deref())
            .await?;
        self.refresh_ssh_trust().await?;
        self.drain().await?;
        let signed = self.produce().await?.context("the spool is full")?;
        let delivered = self.drain().await?;
        let delivery = delivered
            .iter()
            .find(|(seq, _)| *seq == signed.sequence)
            .map(|(_, d)| *d)
            .context("the new report was not delivered")?;
        Ok((signed, delivery))
    }

    /// Runs until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (wake_tx, mut wake) = tokio::sync::mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = wake_tx.send(());
            }
        })
        .and_then(|mut w| {
            w.watch(self.spool.dir(), notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        });
        if let Err(e) = &watcher {
            tracing::warn!(error = %e, "cannot watch the spool directory; relying on the periodic rescan");
        }
        let interval = self.config.interval;
        let mut next_scan = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut rescan = tokio::time::interval(RESCAN);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(next_scan) => {
                    self.scheduled_scan().await;
                    next_scan = Instant::now() + interval + interval.mul_f64(random_unit() / 10.0);
                }
                Some(()) = wake.recv() => {}
                _ = rescan.tick() => {}
                () = tokio::time::sleep_until(retry_at.unwrap_or(next_scan)), if retry_at.is_some() => retry_at = None,
            }
            if retry_at.is_none() {
                match self.drain().await {
                    Ok(_) => self.backoff.reset(),
                    Err(e) => {
                        let delay = self.backoff.next_delay();
                        tracing::warn!(error = format!("{e:#}"), retry_in = ?delay, "delivery failed; reports stay in the spool");
                        retry_at = Some(Instant::now() + delay);
                    }
                }
            }
        }
    }

    async fn scheduled_scan(&mut self) {
        let issuing = match self.refresh_trust().await {
            Ok(issuing) => issuing,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "cannot refresh the trusted CAs");
                None
            }
        };
        if let Err(e) = self
            .renew_if_due(OffsetDateTime::now_utc(), issuing.as_deref())
            .await
        {
            tracing::error!(error = format!("{e:#}"), "certificate renewal failed");
        }
        // Monitoring goes on without it; sshd keeps what it had.
        if let Err(e) = self.refresh_ssh_trust().await {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot update the box's SSH trust"
            );
        }
        match self.produce().await {
            Ok(Some(signed)) => {
                tracing::info!(report_id = %signed.report_id, sequence = signed.sequence, "report spooled")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "scan cycle failed"),
        }
    }
}

/// A refusal about the report itself. Refusals about the probe (revoked, unknown, no
/// certificate) keep the report: it may yet be delivered once an operator acts.
fn refused_for_good(e: &UplinkError) -> bool {
    e.is_permanent()
        && !matches!(
            e.code(),
            Some(code::PROBE_REVOKED | code::UNKNOWN_PROBE | code::CLIENT_CERTIFICATE_REQUIRED)
        )
}

/// The nester's ingest listener: the config's, or the enrollment token's.
fn ingest_address(config: &Config) -> anyhow::Result<String> {
    match &config.nester.ingest {
        Some(addr) => Ok(addr.clone()),
        None => state::ingest_address(&config.state_dir),
    }
}

fn uplink_for(config: &Config, identity: &Identity) -> anyhow::Result<Uplink> {
    let addr = ingest_address(config)?;
    Ok(Uplink::new(
        &addr,
        config.nester.server_name.as_deref(),
        crate::tls::mtls(identity)?,
    )?)
}
