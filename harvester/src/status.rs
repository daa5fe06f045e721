//! `harvester status`: what an operator at the site box wants to know first.

use std::time::SystemTime;

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Config;
use crate::spool::Spool;
use crate::state::{self, Counter, Identity};

#[derive(Debug, Serialize)]
pub struct Status {
    pub probe_id: String,
    pub site: String,
    #[serde(with = "time::serde::rfc3339")]
    pub certificate_expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub certificate_renews_at: OffsetDateTime,
    /// SHA-256 of the CA that issued the certificate.
    pub certificate_issuer: String,
    /// SHA-256 of every CA trusted for the nester (two during a CA rotation).
    pub trusted_cas: Vec<String>,
    pub spool_reports: usize,
    pub spool_bytes: u64,
    pub oldest_report_age_secs: Option<u64>,
    pub unsent_reports: u64,
    pub rejected_reports: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_upload: Option<OffsetDateTime>,
    /// The version of the nester's SSH trust installed for the box's sshd (`[ssh]`).
    pub ssh_trust_version: Option<u64>,
}

impl Status {
    pub fn read(config: &Config) -> anyhow::Result<Self> {
        let dir = &config.state_dir;
        let identity = Identity::load(dir)?;
        let spool = Spool::open(dir.join("spool"), config.spool.max_bytes)?;
        let usage = spool.usage()?;
        Ok(Self {
            probe_id: identity.probe_id.to_string(),
            site: identity.site.clone(),
            certificate_expires_at: identity.not_after,
            certificate_renews_at: identity.renew_at(),
            certificate_issuer: shared::identity::fingerprint(&identity.ca),
            trusted_cas: identity
                .trust
                .iter()
                .map(|ca| shared::identity::fingerprint(ca))
                .collect(),
            spool_reports: usage.reports,
            spool_bytes: usage.bytes,
            oldest_report_age_secs: usage.oldest.map(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .map_or(0, |d| d.as_secs())
            }),
            unsent_reports: Counter::unsent(dir)?.get(),
            rejected_reports: spool.rejected()?,
            last_upload: state::last_upload(dir),
            ssh_trust_version: config
                .ssh
                .as_ref()
                .and_then(crate::ssh_trust::installed_version),
        })
    }

    pub fn render(&self, now: OffsetDateTime) -> String {
        let ago = |t: OffsetDateTime| {
            humantime::format_duration(std::time::Duration::from_secs(
                (now - t).whole_seconds().max(0) as u64,
            ))
        };
        let until = |t: OffsetDateTime| {
            humantime::format_duration(std::time::Duration::from_secs(
                (t - now).whole_seconds().max(0) as u64,
            ))
        };
        let expiry = if now >= self.certificate_expires_at {
            format!("EXPIRED at {}; enroll again", self.certificate_expires_at)
        } else {
            format!(
                "expires {} (in {}), renews from {}",
                self.certificate_expires_at,
                until(self.certificate_expires_at),
                self.certificate_renews_at
            )
        };
        let oldest = self.oldest_report_age_secs.map_or(String::new(), |s| {
            format!(
                ", oldest {} old",
                humantime::format_duration(std::time::Duration::from_secs(s))
            )
        });
        let last = self
            .last_upload
            .map_or("never".to_string(), |t| format!("{t} ({} ago)", ago(t)));
        format!(
            "probe:        {} (site {})\ncertificate:  {expiry}\nissued by:    CA {}\ntrusts:       {}\nspool:        {} reports, {} bytes{oldest}\nunsent:       {} reports never produced or dropped (spool full), in total\nrejected:     {} reports refused by the nester (spool/rejected)\nlast upload:  {last}\n",
            self.probe_id,
            self.site,
            &self.certificate_issuer[..16],
            self.trusted_cas
                .iter()
                .map(|ca| format!("CA {}", &ca[..16]))
                .collect::<Vec<_>>()
                .join(", "),
            self.spool_reports,
            self.spool_bytes,
            self.unsent_reports,
            self.rejected_reports
        ) + &self
            .ssh_trust_version
            .map_or(String::new(), |v| format!("ssh trust:    version {v}\n"))
    }
}
