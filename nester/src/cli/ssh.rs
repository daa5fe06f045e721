//! `nester ssh`: the SSH certificate authorities. `rotate` replaces one with no moment where
//! a valid certificate is refused (see `ssh_ca/rotation.rs`), `retire` ends a rotation's
//! overlap early, `status` shows each CA and which harvesters hold the current SSH trust. A
//! running nester takes a change up within seconds.

use anyhow::bail;
use time::Duration;

use crate::clock::{human, rfc3339_ms};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::{Actor, Change};
use crate::db::ssh_hosts::HostCertificate;
use crate::db::ssh_trust::Holder;
use crate::ssh_ca::ca::Purpose;
use crate::ssh_ca::rotation::{self, CaSet};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    UserCa,
    HostCa,
}

impl From<Which> for Purpose {
    fn from(which: Which) -> Self {
        match which {
            Which::UserCa => Self::User,
            Which::HostCa => Self::Host,
        }
    }
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Each CA, its fingerprint and rotation; which harvesters hold the current SSH trust.
    Status,
    /// Start a new CA: trusted at once, signing after two harvester intervals (every box
    /// has it by then), while the current one stays trusted for the overlap.
    Rotate {
        which: Which,
        /// How long the current CA stays trusted, e.g. `12h` (default: twice the longest
        /// harvester interval plus the longest certificate lifetime). `0s` swaps at once: for
        /// a CA key that leaked, where refusing what it signed is the point.
        #[arg(long)]
        overlap: Option<humantime::Duration>,
    },
    /// End a rotation's overlap now: the previous CA is no longer trusted.
    Retire { which: Which },
}

/// Twice the longest interval a harvester reports at (5 minutes if none has reported).
async fn distribution(db: &Db) -> anyhow::Result<Duration> {
    let longest = db
        .probe_standings()
        .await?
        .iter()
        .filter_map(|p| p.interval_ms.filter(|i| *i > 0))
        .max()
        .map_or(
            crate::db::ProbeStatus::DEFAULT_INTERVAL,
            Duration::milliseconds,
        );
    Ok(longest * 2)
}

pub async fn run(command: Command, config: &Config, db: &Db, now_ms: i64) -> anyhow::Result<()> {
    let dir = DataDir::new(&config.data_dir);
    match command {
        Command::Status => print!("{}", report(&dir, db, now_ms).await?),
        Command::Rotate { which, overlap } => {
            let purpose = Purpose::from(which);
            let distribute = distribution(db).await?;
            // Host CA too: after the switch, boxes present the new CA's certificate from
            // their next cycle, well within a user certificate's lifetime.
            let overlap = match overlap {
                Some(d) => Duration::try_from(*d)?,
                None => distribute + Duration::try_from(config.ssh.max_validity)?,
            };
            let ms = |d: Duration| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX);
            let switch = now_ms + ms(distribute.min(overlap));
            let retire = now_ms.saturating_add(ms(overlap));
            let rotation = rotation::rotate(&dir, purpose, now_ms, switch, retire)?;
            let change = Change::new("ssh.ca_rotate", format!("ssh-ca:{}", rotation.next))
                .with("ca", purpose.argument())
                .with("previous", &rotation.previous)
                .with("switch_ms", rotation.switch_ms)
                .with("retire_ms", rotation.retire_ms);
            db.ssh_trust_changed(Actor::cli(), change).await?;
            println!(
                "new SSH {noun} {next}\n\
                 trusted from now on; it signs from {switch} (harvesters install it by then)\n\
                 the previous {noun} {previous} stays trusted until {retire}",
                noun = purpose.noun(),
                next = rotation.next,
                previous = rotation.previous,
                switch = rfc3339_ms(rotation.switch_ms),
                retire = rfc3339_ms(rotation.retire_ms),
            );
            if purpose == Purpose::Host {
                println!(
                    "Support engineers: add the new `@cert-authority` line (the SSH page, or \
                     GET /api/v1/ssh/ca) to known_hosts before {}.",
                    rfc3339_ms(rotation.switch_ms)
                );
            }
        }
        Command::Retire { which } => {
            let purpose = Purpose::from(which);
            let Some(ended) = rotation::retire_if_due(&dir, purpose, i64::MAX)? else {
                bail!(
                    "no rotation of the SSH {} is in progress (see `nester ssh status`)",
                    purpose.noun()
                );
            };
            db.ssh_trust_changed(Actor::cli(), crate::ssh_ca::retired(purpose, &ended))
                .await?;
            println!(
                "the previous SSH {} {} is retired",
                purpose.noun(),
                ended.previous
            );
        }
    }
    Ok(())
}

/// What `nester ssh status` prints: each CA and its rotation, which harvesters hold the
/// current SSH trust, which boxes present a current host certificate.
pub async fn report(dir: &DataDir, db: &Db, now_ms: i64) -> anyhow::Result<String> {
    let mut text = String::new();
    for purpose in Purpose::ALL {
        text.push_str(&status(purpose, &CaSet::load(dir, purpose)?, now_ms));
    }
    let version = db.ssh_trust_version().await?;
    text.push_str(&holders_text(
        version,
        &db.ssh_trust_holders().await?,
        now_ms,
    ));
    let signing = CaSet::load(dir, Purpose::Host)?
        .signing(now_ms)
        .fingerprint();
    let certificates = db.latest_host_certificates().await?;
    text.push_str(&hosts_text(&signing, &certificates, now_ms));
    Ok(text)
}

fn status(purpose: Purpose, set: &CaSet, now_ms: i64) -> String {
    let signing = set.signing(now_ms).fingerprint();
    let mut text = format!("SSH {}\n", purpose.noun());
    for ca in set.trusted(now_ms) {
        let role = if ca.fingerprint() == signing {
            "signing"
        } else {
            "trusted"
        };
        text.push_str(&format!("  {role:8} {}\n", ca.fingerprint()));
    }
    if let Some(r) = set.rotation() {
        text.push_str(&format!(
            "  rotation started {}: the new CA signs from {}, the previous one is retired at {}\n",
            rfc3339_ms(r.started_ms),
            rfc3339_ms(r.switch_ms),
            rfc3339_ms(r.retire_ms)
        ));
    }
    text
}

fn holders_text(version: u64, holders: &[Holder], now_ms: i64) -> String {
    let behind: Vec<&Holder> = holders
        .iter()
        .filter(|h| h.held_version != Some(version))
        .collect();
    let mut text = format!(
        "SSH trust version {version}: {} of {} harvester(s) hold it\n",
        holders.len() - behind.len(),
        holders.len()
    );
    for h in behind {
        let held = h.held_version.map_or("none".to_string(), |v| v.to_string());
        let failing = if h.behind {
            ": it did not install what it was given (see its log)"
        } else {
            ""
        };
        text.push_str(&format!(
            "  behind  {}  site {}  holds {held}, last seen {} ago{failing}\n",
            h.probe_id,
            h.site,
            human(now_ms - h.seen_ms)
        ));
    }
    text
}

/// Which boxes present a valid host certificate from the signing host CA, and which not.
fn hosts_text(signing: &str, certificates: &[HostCertificate], now_ms: i64) -> String {
    let behind: Vec<&HostCertificate> = certificates
        .iter()
        .filter(|c| c.ca != signing || c.valid_before_ms <= now_ms)
        .collect();
    let mut text = format!(
        "host certificates: {} of {} box(es) have a valid one from the signing host CA\n",
        certificates.len() - behind.len(),
        certificates.len()
    );
    for c in behind {
        let why = if c.valid_before_ms <= now_ms {
            "expired"
        } else {
            "from another host CA"
        };
        text.push_str(&format!(
            "  behind  {}  site {}  {why} (serial {}, for {})\n",
            c.probe_id,
            c.site,
            c.serial,
            c.principals.join(" ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_harvesters_behind() {
        let holder = |id: &str, held| Holder {
            probe_id: id.into(),
            site: "s".into(),
            served_version: 4,
            held_version: held,
            seen_ms: 0,
            behind: id == "c",
        };
        let text = holders_text(
            4,
            &[
                holder("a", Some(4)),
                holder("b", Some(3)),
                holder("c", None),
            ],
            60_000,
        );
        assert!(
            text.starts_with("SSH trust version 4: 1 of 3 harvester(s) hold it\n"),
            "{text}"
        );
        assert!(text.contains("behind  b  site s  holds 3"), "{text}");
        assert!(text.contains("behind  c  site s  holds none"), "{text}");
        assert!(text.contains("did not install"), "{text}");
        assert!(
            !text.contains("holds 3, last seen 1m ago: it did not"),
            "{text}"
        );
        assert!(!text.contains("behind  a"), "{text}");
    }

    #[test]
    fn status_names_the_boxes_without_a_current_host_certificate() {
        let cert = |id: &str, ca: &str, until| HostCertificate {
            serial: 7,
            probe_id: id.into(),
            site: "s".into(),
            public_key: String::new(),
            fingerprint: String::new(),
            principals: vec!["box".into(), "10.0.0.1".into()],
            valid_after_ms: 0,
            valid_before_ms: until,
            ca: ca.into(),
            certificate: String::new(),
        };
        let text = hosts_text(
            "new",
            &[
                cert("a", "new", 100),
                cert("b", "old", 100),
                cert("c", "new", 50),
            ],
            60,
        );
        assert!(
            text.starts_with("host certificates: 1 of 3 box(es)"),
            "{text}"
        );
        assert!(
            text.contains("behind  b  site s  from another host CA (serial 7, for box 10.0.0.1)"),
            "{text}"
        );
        assert!(text.contains("behind  c  site s  expired"), "{text}");
    }
}
