//! Replacing the nester's CA (`nester ca rotate`) without a harvester noticing.
//!
//! The new CA takes over at once: it issues every new certificate, listener and probe. The
//! old one stays trusted for an overlap (client certificates and reports it signed are still
//! accepted) and signs a cross-certificate for the new one, which the listeners serve in
//! their chain: a harvester that trusts only the old CA still verifies the nester until it has
//! fetched the new trust bundle. When the overlap ends the old CA is retired: no longer
//! trusted for anything new, its key deleted, its certificate kept in `retired.pem` so the
//! reports it signed still verify against `/ca.pem`.
//!
//! Crash safety: the new files are written beside the old ones (`.next`), then
//! `rotation.json` is written (the commit), then the files are renamed into place. Opening
//! the data directory finishes a committed rotation or removes an uncommitted one.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{Ca, CaCert};
use crate::datadir::DataDir;

/// A rotation in progress, as `rotation.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// SHA-256 of the CA being retired.
    pub previous_sha256: String,
    /// SHA-256 of the CA that issues from now on.
    pub issuing_sha256: String,
    pub started_ms: i64,
    /// When the previous CA stops being trusted.
    pub retire_ms: i64,
}

fn next(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// The rotation in progress, if any.
pub fn current(dir: &DataDir) -> anyhow::Result<Option<Rotation>> {
    let path = dir.rotation();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is corrupt", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Starts a rotation: a new CA issues from now on, the current one stays trusted for
/// `overlap`. Refused while another rotation's overlap runs.
pub fn rotate(dir: &DataDir, now: OffsetDateTime, overlap: Duration) -> anyhow::Result<Rotation> {
    if let Some(running) = current(dir)? {
        bail!(
            "a CA rotation is in progress: the previous CA retires at {}; wait for it, or end \
             it now with `nester ca retire`",
            crate::clock::rfc3339_ms(running.retire_ms)
        );
    }
    anyhow::ensure!(
        overlap >= Duration::ZERO && overlap <= super::CA_VALIDITY,
        "the overlap must be between 0 and the CA's own lifetime"
    );
    let old = Ca::load(dir)?;
    for stale in [dir.ca_cert(), dir.ca_key(), dir.cross_cert()] {
        let _ = std::fs::remove_file(next(&stale));
    }
    let new = Ca::create_at(&next(&dir.ca_cert()), &next(&dir.ca_key()), now)?;
    let cross = old.cross_sign(&new, now, now + overlap)?;
    crate::datadir::write_new(&next(&dir.cross_cert()), cross.as_bytes(), 0o644)?;
    let rotation = Rotation {
        previous_sha256: old.cert.fingerprint(),
        issuing_sha256: new.cert.fingerprint(),
        started_ms: crate::clock::to_ms(now),
        retire_ms: crate::clock::to_ms(now + overlap),
    };
    write_atomically(&dir.rotation(), &serde_json::to_vec_pretty(&rotation)?)?;
    finish(dir, &rotation)?;
    Ok(rotation)
}

/// Moves a committed rotation's files into place; each step is skipped once done.
fn finish(dir: &DataDir, rotation: &Rotation) -> anyhow::Result<()> {
    let current = CaCert::load(dir)?;
    if !dir.previous_ca_cert().exists() && current.fingerprint() == rotation.previous_sha256 {
        write_atomically(&dir.previous_ca_cert(), current.pem.as_bytes())?;
    }
    let key_next = next(&dir.ca_key());
    if key_next.exists() {
        if dir.ca_key().exists() && !dir.previous_ca_key().exists() {
            std::fs::rename(dir.ca_key(), dir.previous_ca_key())?;
        }
        std::fs::rename(&key_next, dir.ca_key())?;
    }
    for file in [dir.cross_cert(), dir.ca_cert()] {
        if next(&file).exists() {
            std::fs::rename(next(&file), &file)?;
        }
    }
    sync_dir(dir)
}

/// Finishes a committed rotation a crash interrupted, or removes an uncommitted one.
pub fn recover(dir: &DataDir) -> anyhow::Result<()> {
    let pending = [dir.ca_cert(), dir.ca_key(), dir.cross_cert()]
        .iter()
        .any(|f| next(f).exists());
    if !pending {
        return Ok(());
    }
    let committed = match (current(dir)?, CaCert::load_from(&next(&dir.ca_cert()))) {
        (Some(rotation), Ok(new)) if new.fingerprint() == rotation.issuing_sha256 => Some(rotation),
        // The certificate is in place already; only the key or the cross remain.
        (Some(rotation), Err(_)) => Some(rotation),
        _ => None,
    };
    match committed {
        Some(rotation) => {
            finish(dir, &rotation)?;
            tracing::warn!("finished a CA rotation a restart interrupted");
        }
        None => {
            for file in [dir.ca_cert(), dir.ca_key(), dir.cross_cert()] {
                let _ = std::fs::remove_file(next(&file));
            }
            tracing::warn!("removed the files of a CA rotation that never started");
        }
    }
    Ok(())
}

/// Ends the rotation when its overlap is over at `now_ms`: the previous CA joins the retired
/// ones and its key is deleted. Returns the rotation it ended.
pub fn retire_if_due(dir: &DataDir, now_ms: i64) -> anyhow::Result<Option<Rotation>> {
    let Some(rotation) = current(dir)? else {
        return Ok(None);
    };
    if now_ms < rotation.retire_ms {
        return Ok(None);
    }
    if let Ok(previous) = CaCert::load_from(&dir.previous_ca_cert()) {
        let mut retired = std::fs::read_to_string(dir.retired_cas()).unwrap_or_default();
        let known = retired_cas(dir)?
            .iter()
            .any(|c| c.fingerprint() == previous.fingerprint());
        if !known {
            retired.push_str(&previous.pem);
            write_atomically(&dir.retired_cas(), retired.as_bytes())?;
        }
    }
    for file in [
        dir.previous_ca_key(),
        dir.cross_cert(),
        dir.previous_ca_cert(),
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", file.display())),
        }
    }
    std::fs::remove_file(dir.rotation())?;
    sync_dir(dir)?;
    Ok(Some(rotation))
}

/// The retired CA certificates.
pub fn retired_cas(dir: &DataDir) -> anyhow::Result<Vec<CaCert>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let path = dir.retired_cas();
    let Ok(text) = std::fs::read(&path) else {
        return Ok(Vec::new());
    };
    CertificateDer::pem_slice_iter(&text)
        .map(|der| {
            let der = der.with_context(|| format!("{} is corrupt", path.display()))?;
            Ok(CaCert::from_der(der.into_owned()))
        })
        .collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    crate::datadir::write_new(&tmp, bytes, 0o644)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

fn sync_dir(dir: &DataDir) -> anyhow::Result<()> {
    if let Some(pki) = dir.ca_cert().parent() {
        std::fs::File::open(pki)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (tempfile::TempDir, DataDir) {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        crate::cli::init::init(&dir, &[]).unwrap();
        (temp, dir)
    }

    #[test]
    fn a_rotation_swaps_the_ca_keeps_the_old_one_then_retires_it() {
        let (_temp, dir) = data();
        let old = Ca::load(&dir).unwrap().cert;
        let now = OffsetDateTime::now_utc();
        let rotation = rotate(&dir, now, Duration::days(30)).unwrap();
        let new = Ca::load(&dir).unwrap().cert;
        assert_ne!(old.fingerprint(), new.fingerprint());
        assert_eq!(rotation.previous_sha256, old.fingerprint());
        assert_eq!(rotation.issuing_sha256, new.fingerprint());
        assert_eq!(
            CaCert::load_from(&dir.previous_ca_cert()).unwrap().der,
            old.der
        );
        assert!(dir.previous_ca_key().exists() && dir.cross_cert().exists());
        let again = rotate(&dir, now, Duration::days(1))
            .unwrap_err()
            .to_string();
        assert!(again.contains("in progress"), "{again}");

        assert_eq!(retire_if_due(&dir, rotation.retire_ms - 1).unwrap(), None);
        assert_eq!(
            retire_if_due(&dir, rotation.retire_ms).unwrap(),
            Some(rotation)
        );
        assert!(!dir.previous_ca_key().exists() && !dir.cross_cert().exists());
        assert!(current(&dir).unwrap().is_none());
        let retired = retired_cas(&dir).unwrap();
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].der, old.der);

        // A second rotation retires into the same file.
        let second = rotate(&dir, now, Duration::ZERO).unwrap();
        retire_if_due(&dir, second.retire_ms).unwrap();
        assert_eq!(retired_cas(&dir).unwrap().len(), 2);
    }

    #[test]
    fn a_rotation_cut_short_is_finished_when_committed_and_undone_when_not() {
        let (_temp, dir) = data();
        let old = CaCert::load(&dir).unwrap();
        let now = OffsetDateTime::now_utc();

        // Cut before the commit: the new files go, the old CA stays.
        Ca::create_at(&next(&dir.ca_cert()), &next(&dir.ca_key()), now).unwrap();
        recover(&dir).unwrap();
        assert!(!next(&dir.ca_cert()).exists() && !next(&dir.ca_key()).exists());
        assert_eq!(CaCert::load(&dir).unwrap().der, old.der);
        Ca::load(&dir).unwrap();

        // Cut after the commit, after the old key moved: finished.
        let rotation = rotate(&dir, now, Duration::days(1)).unwrap();
        let new = CaCert::load(&dir).unwrap();
        std::fs::rename(dir.ca_key(), next(&dir.ca_key())).unwrap();
        std::fs::rename(dir.ca_cert(), next(&dir.ca_cert())).unwrap();
        std::fs::write(dir.ca_cert(), old.pem.as_bytes()).unwrap();
        recover(&dir).unwrap();
        assert_eq!(CaCert::load(&dir).unwrap().der, new.der);
        assert_eq!(
            Ca::load(&dir).unwrap().cert.fingerprint(),
            rotation.issuing_sha256
        );
        assert!(Ca::load_from(&dir.previous_ca_cert(), &dir.previous_ca_key()).is_ok());
    }
}
