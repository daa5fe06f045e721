//! The agent: scan, sign and spool a report (`produce`), deliver what the spool holds
//! (`drain`), renew the certificate when due (or at once when the nester's CA was rotated).
//! The steps of one cycle and their error policy are `cycle.rs`, used alike by the daemon
//! (`daemon.rs`) and the tests; the CAs to trust are `trust.rs`, the box's sshd trust
//! `ssh.rs`.

mod cycle;
mod daemon;
mod ssh;
mod trust;

pub use cycle::{Cycle, Step};

use std::time::Duration;

use anyhow::Context;
use shared::identity::fingerprint;
use shared::protocol::code;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::scan::{self, PortSpec};
use crate::spool::{Spool, WhenFull};
use crate::state::{self, Counter, Identity};
use crate::uplink::{Delivery, Uplink, UplinkError};

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
