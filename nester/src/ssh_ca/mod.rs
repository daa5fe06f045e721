//! The nester's SSH certificate authorities (`ca.rs`: users, hosts), their rotation
//! (`rotation.rs`), the settings of what they issue (`[ssh]`), which keys they accept
//! (`keys.rs`), and the KRL of what is revoked (`krl.rs`).

pub mod ca;
pub mod keys;
pub mod krl;
pub mod rotation;

use std::sync::{Arc, RwLock};

use shared::protocol::SshTrust;

use self::ca::Purpose;
use self::rotation::CaSet;
use crate::config::SshConfig;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::{Actor, Change};

/// Both purposes' CAs, as loaded from the data directory.
pub struct Cas {
    pub user: CaSet,
    pub host: CaSet,
}

impl Cas {
    fn load(dir: &DataDir) -> anyhow::Result<Self> {
        Ok(Self {
            user: CaSet::load(dir, Purpose::User)?,
            host: CaSet::load(dir, Purpose::Host)?,
        })
    }

    pub fn of(&self, purpose: Purpose) -> &CaSet {
        match purpose {
            Purpose::User => &self.user,
            Purpose::Host => &self.host,
        }
    }

    /// What tells two loads apart: each CA and its rotation.
    fn stamp(&self) -> Vec<(String, Option<rotation::Rotation>)> {
        [&self.user, &self.host]
            .iter()
            .map(|set| (set.newest.fingerprint(), set.rotation().cloned()))
            .collect()
    }
}

/// The nester's SSH certificate authorities and the settings of what they issue. A
/// rotation started by `nester ssh` is taken up by [`Ssh::take_up`] (the certificates job).
pub struct Ssh {
    dir: DataDir,
    cas: RwLock<Arc<Cas>>,
    pub config: SshConfig,
}

impl Ssh {
    /// Both CAs (made now for a data directory older than them).
    pub fn load(dir: &DataDir, config: SshConfig) -> anyhow::Result<Self> {
        Ok(Self {
            cas: RwLock::new(Arc::new(Cas::load(dir)?)),
            dir: dir.clone(),
            config,
        })
    }

    /// The CAs now.
    pub fn cas(&self) -> Arc<Cas> {
        Arc::clone(
            &self
                .cas
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Retires a rotation's previous CA when due, and uses the CAs on disk when they changed
    /// (a rotation started or ended by `nester ssh`). Both are audited where they happen.
    pub async fn take_up(&self, db: &Db, now_ms: i64) -> anyhow::Result<()> {
        for purpose in Purpose::ALL {
            if let Some(ended) = rotation::retire_if_due(&self.dir, purpose, now_ms)? {
                tracing::info!(previous = %ended.previous, ca = purpose.noun(), "SSH CA rotation over: the previous CA is retired");
                db.ssh_trust_changed(Actor::server(), retired(purpose, &ended))
                    .await?;
            }
        }
        let fresh = Cas::load(&self.dir)?;
        if fresh.stamp() != self.cas().stamp() {
            tracing::info!(
                "SSH CAs taken up from the data directory (a rotation started or ended)"
            );
            *self
                .cas
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(fresh);
        }
        Ok(())
    }

    /// The KRL of everything revoked under a CA still trusted, and its version.
    pub async fn krl(&self, db: &Db, now_ms: i64) -> anyhow::Result<(u64, Vec<u8>)> {
        let revoked = db.ssh_revocations().await?;
        let generated = u64::try_from(db.clock().now().unix_timestamp()).unwrap_or(0);
        let mut krl = krl::Krl::new(revoked.version, generated, "seahawks nester");
        let cas = self.cas();
        let trusted = cas.user.trusted(now_ms);
        for (fingerprint, serial) in revoked.serials {
            match trusted.iter().find(|ca| ca.fingerprint() == fingerprint) {
                Some(ca) => krl.revoke_serial(ca.public_key(), serial)?,
                // A CA no longer trusted: its certificates are refused anyway.
                None => tracing::debug!(
                    ca = fingerprint,
                    serial,
                    "revoked certificate of a retired SSH CA left out"
                ),
            }
        }
        for key in revoked.keys {
            krl.revoke_key(&russh::keys::PublicKey::from_openssh(&key)?)?;
        }
        Ok((revoked.version, krl.encode()))
    }

    /// What a harvester box's sshd trusts and refuses now.
    pub async fn trust(&self, db: &Db, now_ms: i64) -> anyhow::Result<SshTrust> {
        use base64::Engine;
        let (version, krl) = self.krl(db, now_ms).await?;
        let cas = self.cas();
        Ok(SshTrust {
            version,
            user_ca_keys: cas
                .user
                .trusted(now_ms)
                .iter()
                .map(|ca| ca.openssh())
                .collect(),
            krl: base64::engine::general_purpose::STANDARD.encode(krl),
        })
    }

    /// The `known_hosts` lines that trust every box whose host key a trusted host CA signed,
    /// for the hosts of `[ssh] host_patterns` alone (none without patterns).
    pub fn known_hosts(&self, now_ms: i64) -> Vec<String> {
        let patterns = self.config.host_patterns.join(",");
        if patterns.is_empty() {
            return Vec::new();
        }
        let cas = self.cas();
        cas.host
            .trusted(now_ms)
            .iter()
            .map(|ca| format!("@cert-authority {patterns} {}", ca.openssh()))
            .collect()
    }
}

/// The audit entry of a rotation's end.
pub fn retired(purpose: Purpose, ended: &rotation::Rotation) -> Change {
    Change::new("ssh.ca_retire", format!("ssh-ca:{}", ended.previous))
        .with("ca", purpose.argument())
        .with("next", &ended.next)
}
