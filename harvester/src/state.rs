//! The harvester's state directory, its only source of truth.
//!
//! ```text
//! STATE_DIR/            0700
//!   identity.pem        Ed25519 private key + the probe certificate, 0600, replaced atomically
//!   ca.pem              the nester CA that issued identity.pem's certificate
//!   trust.pem           every CA to trust for the nester (from its signed trust bundle;
//!                       two during a CA rotation); absent until first fetched: ca.pem alone
//!   site                the site the probe was enrolled for
//!   ingest              the nester's ingest address, from the enrollment token
//!   sequence            the last report sequence number used
//!   unsent              reports never produced or dropped (spool full), running total
//!   last_upload         when a report was last acknowledged (RFC 3339)
//!   spool/              signed reports waiting for delivery (see `spool.rs`)
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use uuid::Uuid;
use x509_parser::prelude::{FromDer, X509Certificate};

pub const IDENTITY_FILE: &str = "identity.pem";
pub const CA_FILE: &str = "ca.pem";
pub const TRUST_FILE: &str = "trust.pem";
const SITE_FILE: &str = "site";
const INGEST_FILE: &str = "ingest";
const SEQUENCE_FILE: &str = "sequence";
const UNSENT_FILE: &str = "unsent";
const LAST_UPLOAD_FILE: &str = "last_upload";

/// Who this harvester is: its key and certificate, the CAs it trusts, its site.
pub struct Identity {
    pub probe_id: Uuid,
    pub site: String,
    pub key: PrivateKeyDer<'static>,
    pub cert: CertificateDer<'static>,
    /// The CA that issued `cert` (the second certificate of every signed report's chain).
    pub ca: CertificateDer<'static>,
    /// Every CA trusted for the nester's certificate, `ca` among them.
    pub trust: Vec<CertificateDer<'static>>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Identity {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(IDENTITY_FILE);
        if !path.exists() {
            bail!(
                "{} is missing: this harvester is not enrolled; run `harvester enroll --token-file FILE`",
                path.display()
            );
        }
        let key = PrivateKeyDer::from_pem_file(&path)
            .with_context(|| format!("no private key in {}", path.display()))?;
        let cert = CertificateDer::from_pem_file(&path)
            .with_context(|| format!("no certificate in {}", path.display()))?;
        let ca_path = dir.join(CA_FILE);
        let ca = CertificateDer::from_pem_file(&ca_path)
            .with_context(|| format!("cannot read {}", ca_path.display()))?;
        let probe_id = shared::identity::probe_id_from_cert(&cert)
            .with_context(|| format!("in {}", path.display()))?;
        let site = fs::read_to_string(dir.join(SITE_FILE))
            .with_context(|| format!("cannot read {}", dir.join(SITE_FILE).display()))?;
        let (not_before, not_after) =
            validity(&cert).with_context(|| format!("in {}", path.display()))?;
        let trust_path = dir.join(TRUST_FILE);
        let mut trust = match fs::read(&trust_path) {
            Ok(pem) => CertificateDer::pem_slice_iter(&pem)
                .map(|c| c.map(CertificateDer::into_owned))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} is corrupt", trust_path.display()))?,
            Err(_) => Vec::new(),
        };
        if !trust.contains(&ca) {
            trust.push(ca.clone());
        }
        Ok(Self {
            trust,
            probe_id,
            site: site.trim().to_string(),
            key,
            cert,
            ca,
            not_before,
            not_after,
        })
    }

    /// Refuses an expired certificate with what to do about it.
    pub fn check_current(&self, now: OffsetDateTime) -> anyhow::Result<()> {
        if now >= self.not_after {
            bail!(
                "the probe certificate expired at {}; it can no longer renew itself. Enroll again: \
                 ask an administrator for a token (`nester token create`), remove {IDENTITY_FILE} from \
                 the state directory and run `harvester enroll --token-file FILE`",
                self.not_after
            );
        }
        Ok(())
    }

    /// When to renew: at two thirds of the lifetime, give or take 1/30 of it. The offset comes
    /// from the certificate's own digest, so it is stable for one certificate and spreads a
    /// fleet enrolled at the same moment.
    pub fn renew_at(&self) -> OffsetDateTime {
        let lifetime = self.not_after - self.not_before;
        let digest = shared::identity::fingerprint(&self.cert);
        let byte = u8::from_str_radix(&digest[..2], 16).unwrap_or(128);
        let offset = lifetime * ((f64::from(byte) / 255.0 - 0.5) * 2.0 / 30.0);
        self.not_before + lifetime * (2.0 / 3.0) + offset
    }

    /// The report signer: this probe's key, its certificate and the CA as the `x5c` chain.
    pub fn signer(&self) -> anyhow::Result<shared::Signer> {
        let PrivateKeyDer::Pkcs8(pkcs8) = &self.key else {
            bail!("the probe key must be an Ed25519 key in PKCS#8 form");
        };
        let chain = [self.cert.clone(), self.ca.clone()];
        shared::Signer::new(pkcs8.secret_pkcs8_der(), &chain)
            .context("while loading the report signer")
    }
}

fn validity(cert: &[u8]) -> anyhow::Result<(OffsetDateTime, OffsetDateTime)> {
    let (_, cert) = X509Certificate::from_der(cert)
        .map_err(|_| anyhow::anyhow!("the certificate is not valid X.509"))?;
    let v = cert.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

/// Creates the state directory, 0700.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Stores a new identity: key and certificate in one file replaced atomically, so a crash
/// never leaves a key with another key's certificate.
pub fn save_identity(
    dir: &Path,
    key_pem: &str,
    cert_pem: &str,
    ca_pem: &str,
    site: &str,
) -> anyhow::Result<()> {
    create_dir(dir)?;
    write_atomically(&dir.join(CA_FILE), ca_pem.as_bytes(), 0o644)?;
    write_atomically(&dir.join(SITE_FILE), site.as_bytes(), 0o644)?;
    write_atomically(
        &dir.join(IDENTITY_FILE),
        format!("{key_pem}{cert_pem}").as_bytes(),
        0o600,
    )
}

/// A number kept in a file of the state directory, written atomically.
pub struct Counter {
    path: PathBuf,
    value: u64,
}

impl Counter {
    fn open(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let path = dir.join(name);
        let value = match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .with_context(|| format!("{} is corrupt", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
        };
        Ok(Self { path, value })
    }

    pub fn sequence(dir: &Path) -> anyhow::Result<Self> {
        Self::open(dir, SEQUENCE_FILE)
    }

    pub fn unsent(dir: &Path) -> anyhow::Result<Self> {
        Self::open(dir, UNSENT_FILE)
    }

    pub fn get(&self) -> u64 {
        self.value
    }

    pub fn set(&mut self, value: u64) -> anyhow::Result<()> {
        write_atomically(&self.path, value.to_string().as_bytes(), 0o644)?;
        self.value = value;
        Ok(())
    }

    /// Reserves the next number; it is on disk before it is used.
    pub fn reserve(&mut self) -> anyhow::Result<u64> {
        self.set(self.value + 1)?;
        Ok(self.value)
    }
}

/// Stores the CAs to trust (PEM, one after the other).
pub fn save_trust(dir: &Path, cas_pem: &str) -> anyhow::Result<()> {
    write_atomically(&dir.join(TRUST_FILE), cas_pem.as_bytes(), 0o644)
}

pub fn save_ingest_address(dir: &Path, addr: &str) -> anyhow::Result<()> {
    write_atomically(&dir.join(INGEST_FILE), addr.as_bytes(), 0o644)
}

pub fn ingest_address(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(INGEST_FILE);
    let addr = fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: enroll first, or set `nester.ingest` in the config",
            path.display()
        )
    })?;
    Ok(addr.trim().to_string())
}

pub fn record_upload(dir: &Path, at: OffsetDateTime) -> anyhow::Result<()> {
    let text = at.format(&time::format_description::well_known::Rfc3339)?;
    write_atomically(&dir.join(LAST_UPLOAD_FILE), text.as_bytes(), 0o644)
}

pub fn last_upload(dir: &Path) -> Option<OffsetDateTime> {
    let text = fs::read_to_string(dir.join(LAST_UPLOAD_FILE)).ok()?;
    OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// Temp file, fsync, rename, fsync of the directory: the file is either old or new, never torn.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("while creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("while replacing {}", path.display()))?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut seq = Counter::sequence(dir.path()).unwrap();
        assert_eq!((seq.reserve().unwrap(), seq.reserve().unwrap()), (1, 2));
        assert_eq!(Counter::sequence(dir.path()).unwrap().reserve().unwrap(), 3);
        fs::write(dir.path().join(SEQUENCE_FILE), "garbage").unwrap();
        let err = Counter::sequence(dir.path()).err().unwrap().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn a_missing_identity_says_how_to_enroll() {
        let dir = tempfile::tempdir().unwrap();
        let err = Identity::load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("harvester enroll"), "{err}");
    }
}
