//! The harvester's state directory: its identity (key, certificate, CA) and its sequence counter.
//!
//! ```text
//! STATE_DIR/probe.key   Ed25519 private key, PKCS#8 PEM, 0600
//! STATE_DIR/probe.pem   the probe's certificate
//! STATE_DIR/ca.pem      the nester's CA certificate (trust anchor for the ingest listener)
//! STATE_DIR/sequence    the last report sequence number used
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use uuid::Uuid;

pub const KEY_FILE: &str = "probe.key";
pub const CERT_FILE: &str = "probe.pem";
pub const CA_FILE: &str = "ca.pem";
const SEQUENCE_FILE: &str = "sequence";

/// Who this harvester is: its key and certificate, and the CA it trusts.
pub struct Identity {
    pub probe_id: Uuid,
    pub key: PrivateKeyDer<'static>,
    pub cert: CertificateDer<'static>,
    pub ca: CertificateDer<'static>,
}

impl Identity {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = |f: &str| dir.join(f);
        let key = PrivateKeyDer::from_pem_file(path(KEY_FILE))
            .with_context(|| format!("while reading the probe key {}", path(KEY_FILE).display()))?;
        let cert = CertificateDer::from_pem_file(path(CERT_FILE)).with_context(|| {
            format!(
                "while reading the probe certificate {}",
                path(CERT_FILE).display()
            )
        })?;
        let ca = CertificateDer::from_pem_file(path(CA_FILE)).with_context(|| {
            format!(
                "while reading the CA certificate {}",
                path(CA_FILE).display()
            )
        })?;
        let probe_id = shared::identity::probe_id_from_cert(&cert)
            .with_context(|| format!("in {}", path(CERT_FILE).display()))?;
        Ok(Self {
            probe_id,
            key,
            cert,
            ca,
        })
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

/// The per-probe report counter, persisted so a restart never reuses a number.
pub struct Sequence {
    path: PathBuf,
    last: u64,
}

impl Sequence {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(SEQUENCE_FILE);
        let last = match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .with_context(|| format!("{} is corrupt", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
        };
        Ok(Self { path, last })
    }

    /// Reserves the next number; it is on disk before it is used.
    pub fn reserve(&mut self) -> anyhow::Result<u64> {
        let next = self.last + 1;
        write_atomically(&self.path, next.to_string().as_bytes())?;
        self.last = next;
        Ok(next)
    }
}

/// Temp file, fsync, rename, fsync of the directory: the file is either old or new, never torn.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    let tmp = path.with_extension("tmp");
    let mut file =
        fs::File::create(&tmp).with_context(|| format!("while creating {}", tmp.display()))?;
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
    fn sequence_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut seq = Sequence::open(dir.path()).unwrap();
        assert_eq!((seq.reserve().unwrap(), seq.reserve().unwrap()), (1, 2));
        assert_eq!(Sequence::open(dir.path()).unwrap().reserve().unwrap(), 3);
        fs::write(dir.path().join(SEQUENCE_FILE), "garbage").unwrap();
        let err = Sequence::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
