//! The nester's SSH certificate authorities (`ca.rs`: users, hosts), the settings of what
//! they issue (`[ssh]`), and the KRL of revoked certificates (`krl.rs`).

pub mod ca;
pub mod krl;

use crate::config::SshConfig;
use crate::datadir::DataDir;
use crate::db::Db;

/// The nester's SSH certificate authorities and the settings of what they issue.
pub struct Ssh {
    pub user_ca: ca::SshCa,
    pub host_ca: ca::SshCa,
    pub config: SshConfig,
}

impl Ssh {
    /// Both CAs (made now for a data directory older than them).
    pub fn load(dir: &DataDir, config: SshConfig) -> anyhow::Result<Self> {
        Ok(Self {
            user_ca: ca::SshCa::load_or_create(dir, ca::Purpose::User)?,
            host_ca: ca::SshCa::load_or_create(dir, ca::Purpose::Host)?,
            config,
        })
    }
}

impl Ssh {
    /// The KRL of every revoked user certificate, and its version.
    pub async fn krl(&self, db: &Db) -> anyhow::Result<(u64, Vec<u8>)> {
        let (version, revoked) = db.ssh_revocations().await?;
        let generated = u64::try_from(db.clock().now().unix_timestamp()).unwrap_or(0);
        let mut krl = krl::Krl::new(version, generated, "seahawks nester");
        let current = self.user_ca.fingerprint();
        for (ca, serial) in revoked {
            if ca == current {
                krl.revoke_serial(self.user_ca.public_key(), serial)?;
            } else {
                // A CA no longer trusted: its certificates are refused anyway.
                tracing::debug!(
                    ca,
                    serial,
                    "revoked certificate of a retired SSH CA left out"
                );
            }
        }
        Ok((version, krl.encode()))
    }
}
