//! The nester's SSH certificate authorities: the user CA signs the short-lived certificates
//! support engineers log in to harvester boxes with; the host CA signs those boxes' host
//! keys, so that `ssh` trusts them through one `@cert-authority` line and never asks. Each
//! is an Ed25519 key in the data directory (0600, OpenSSH format), made by `nester init`
//! or, for a data directory older than them, when the nester next starts.

use std::path::PathBuf;

use anyhow::ensure;
use russh::keys::ssh_key::certificate::{Builder, CertType, Certificate};
use russh::keys::{HashAlg, PrivateKey, PublicKey};

use crate::datadir::DataDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    User,
    Host,
}

impl Purpose {
    pub const ALL: [Self; 2] = [Self::User, Self::Host];

    /// The CA's key file (the newest CA during a rotation).
    pub fn path(self, dir: &DataDir) -> PathBuf {
        match self {
            Self::User => dir.ssh_user_ca(),
            Self::Host => dir.ssh_host_ca(),
        }
    }

    pub(super) fn comment(self) -> &'static str {
        match self {
            Self::User => "seahawks-ssh-user-ca",
            Self::Host => "seahawks-ssh-host-ca",
        }
    }

    /// "user CA" or "host CA".
    pub fn noun(self) -> &'static str {
        match self {
            Self::User => "user CA",
            Self::Host => "host CA",
        }
    }

    /// How `nester ssh` names it: `user-ca` or `host-ca`.
    pub fn argument(self) -> &'static str {
        match self {
            Self::User => "user-ca",
            Self::Host => "host-ca",
        }
    }
}

/// What a certificate says.
#[derive(Debug, Clone)]
pub struct Request {
    pub serial: u64,
    /// Logged by sshd for every login with the certificate.
    pub key_id: String,
    /// User names (user certificates) or host names and addresses (host certificates).
    pub principals: Vec<String>,
    /// Seconds since the epoch.
    pub valid_after: u64,
    pub valid_before: u64,
    /// User certificates: agent and port forwarding allowed.
    pub forwarding: bool,
}

pub struct SshCa {
    purpose: Purpose,
    key: PrivateKey,
}

impl SshCa {
    pub fn new(purpose: Purpose, key: PrivateKey) -> Self {
        Self { purpose, key }
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The public key, one OpenSSH line.
    pub fn openssh(&self) -> String {
        // Encoding an Ed25519 public key cannot fail.
        self.public_key().to_openssh().unwrap_or_default()
    }

    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        self.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// A certificate for `subject`.
    pub fn sign(&self, subject: &PublicKey, request: &Request) -> anyhow::Result<Certificate> {
        ensure!(
            !request.principals.is_empty(),
            "a certificate names at least one principal (none would be valid for every one)"
        );
        ensure!(request.serial != 0, "serial 0 cannot be revoked by serial");
        let mut nonce = [0u8; 32];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut builder = Builder::new(
            nonce.to_vec(),
            subject.key_data().clone(),
            request.valid_after,
            request.valid_before,
        )?;
        builder.serial(request.serial)?;
        builder.key_id(request.key_id.clone())?;
        for principal in &request.principals {
            builder.valid_principal(principal.clone())?;
        }
        match self.purpose {
            Purpose::User => {
                builder.cert_type(CertType::User)?;
                builder.extension("permit-pty", "")?;
                if request.forwarding {
                    builder.extension("permit-agent-forwarding", "")?;
                    builder.extension("permit-port-forwarding", "")?;
                }
            }
            Purpose::Host => {
                builder.cert_type(CertType::Host)?;
            }
        }
        Ok(builder.sign(&self.key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> PublicKey {
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]);
        PublicKey::from(russh::keys::ssh_key::public::KeyData::Ed25519(pair.public))
    }

    fn request() -> Request {
        Request {
            serial: 42,
            key_id: "alice #42".into(),
            principals: vec!["support".into()],
            valid_after: 1_000,
            valid_before: 4_600,
            forwarding: false,
        }
    }

    #[test]
    fn user_certificates_carry_what_was_asked_and_validate_against_the_ca_only() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        dir.create().unwrap();
        let load = |purpose| {
            super::super::rotation::CaSet::load(&dir, purpose)
                .unwrap()
                .newest
        };
        let ca = load(Purpose::User);
        assert_eq!(
            ca.fingerprint(),
            load(Purpose::User).fingerprint(),
            "made once"
        );
        let host = load(Purpose::Host);
        assert_ne!(ca.fingerprint(), host.fingerprint());

        let cert = ca.sign(&subject(), &request()).unwrap();
        assert_eq!(cert.serial(), 42);
        assert_eq!(cert.key_id(), "alice #42");
        assert_eq!(cert.valid_principals(), ["support".to_string()]);
        assert_eq!(cert.cert_type(), CertType::User);
        assert!(cert.extensions().contains_key("permit-pty"));
        assert!(!cert.extensions().contains_key("permit-port-forwarding"));
        let ca_fp = ca.public_key().fingerprint(HashAlg::Sha256);
        let host_fp = host.public_key().fingerprint(HashAlg::Sha256);
        cert.validate_at(2_000, [&ca_fp]).unwrap();
        assert!(cert.validate_at(5_000, [&ca_fp]).is_err(), "expired");
        assert!(cert.validate_at(2_000, [&host_fp]).is_err(), "another CA");
    }

    #[test]
    fn no_principal_or_serial_zero_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        dir.create().unwrap();
        let ca = super::super::rotation::CaSet::load(&dir, Purpose::User)
            .unwrap()
            .newest;
        let mut none = request();
        none.principals.clear();
        assert!(ca.sign(&subject(), &none).is_err());
        let mut zero = request();
        zero.serial = 0;
        assert!(ca.sign(&subject(), &zero).is_err());
    }
}
