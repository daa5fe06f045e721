//! Renewing the listeners' own certificates: when one is two thirds through its life, a new
//! one with the same names and a new key is written beside it and swapped in, the key first.
//! A crash half way is finished (or undone) the next time the data directory is opened, so
//! the listener never starts with a certificate and a key that do not belong together.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::datadir::{DataDir, Listener, write_new};

use super::Issued;

/// Where a certificate is in its life: from `start` to `end` (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    pub start: i64,
    pub end: i64,
}

impl Life {
    pub fn of(der: &[u8]) -> Option<Self> {
        let (start, end) = shared::identity::validity(der)?;
        Some(Self {
            start: i64::try_from(start).ok()? * 1000,
            end: i64::try_from(end).ok()? * 1000,
        })
    }

    /// When renewal is due: two thirds through.
    pub fn renew_at(self) -> i64 {
        self.start + (self.end - self.start) * 2 / 3
    }

    /// Whether a listener certificate with this life is to be renewed at `now`: two thirds
    /// through; at once when it was issued for longer than `validity` allows now (a data
    /// directory from before 90-day certificates, or a shorter `server_days`), or when
    /// `other_chain` (the CAs changed: a rotation started or ended).
    pub fn due(self, now: i64, validity_ms: i64, other_chain: bool) -> bool {
        let too_long = self.end - self.start > validity_ms.saturating_add(86_400_000);
        now >= self.renew_at() || too_long || other_chain
    }

    /// Whether under a quarter of the life is left at `now` (renewal has been failing).
    pub fn late(self, now: i64) -> bool {
        self.end - now < (self.end - self.start) / 4
    }
}

fn new_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Writes `issued` (its chain ending with `ca_pem`) as `listener`'s certificate and key.
pub fn install(
    dir: &DataDir,
    listener: Listener,
    issued: &Issued,
    ca_pem: &str,
) -> anyhow::Result<()> {
    let (cert, key) = (dir.listener_cert(listener), dir.listener_key(listener));
    let (cert_new, key_new) = (new_name(&cert), new_name(&key));
    for stale in [&cert_new, &key_new] {
        let _ = std::fs::remove_file(stale);
    }
    write_new(&key_new, issued.key_pem.as_bytes(), 0o600)?;
    let chain = format!("{}{ca_pem}", issued.cert_pem);
    write_new(&cert_new, chain.as_bytes(), 0o644)?;
    sync_dir(&cert)?;
    std::fs::rename(&key_new, &key).with_context(|| format!("cannot replace {}", key.display()))?;
    std::fs::rename(&cert_new, &cert)
        .with_context(|| format!("cannot replace {}", cert.display()))?;
    sync_dir(&cert)
}

/// Finishes or undoes an [`install`] a crash interrupted.
pub fn recover(dir: &DataDir) -> anyhow::Result<()> {
    for listener in Listener::ALL {
        let (cert, key) = (dir.listener_cert(listener), dir.listener_key(listener));
        let (cert_new, key_new) = (new_name(&cert), new_name(&key));
        match (key_new.exists(), cert_new.exists()) {
            // Before the renames: keep the new pair only if it is whole.
            (true, _) => {
                if cert_new.exists() && pair_fits(&cert_new, &key_new) {
                    std::fs::rename(&key_new, &key)?;
                    std::fs::rename(&cert_new, &cert)?;
                    tracing::warn!(
                        listener = listener.name(),
                        "finished a certificate renewal a restart interrupted"
                    );
                } else {
                    let _ = std::fs::remove_file(&key_new);
                    let _ = std::fs::remove_file(&cert_new);
                }
            }
            // Between the renames: the key is new already.
            (false, true) => {
                std::fs::rename(&cert_new, &cert)?;
                tracing::warn!(
                    listener = listener.name(),
                    "finished a certificate renewal a restart interrupted"
                );
            }
            (false, false) => {}
        }
        sync_dir(&cert)?;
    }
    Ok(())
}

fn pair_fits(cert: &Path, key: &Path) -> bool {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let Ok(chain) =
        CertificateDer::pem_file_iter(cert).and_then(Iterator::collect::<Result<Vec<_>, _>>)
    else {
        return false;
    };
    let Ok(key) = rustls_pki_types::PrivateKeyDer::from_pem_file(key) else {
        return false;
    };
    !chain.is_empty() && rustls::sign::CertifiedKey::from_der(chain, key, &provider).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_two_thirds_and_late_past_three_quarters() {
        let life = Life { start: 0, end: 90 };
        assert_eq!(life.renew_at(), 60);
        let life = Life { start: 0, end: 100 };
        assert!(!life.late(75));
        assert!(life.late(76));
    }

    #[test]
    fn a_renewal_cut_short_is_finished_or_undone_never_mismatched() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        crate::cli::init::init(&dir, &[]).unwrap();
        let ca = super::super::Ca::load(&dir).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let fresh = ca
            .issue_server(&["localhost".into()], time::Duration::days(90), now)
            .unwrap();
        let (cert, key) = (
            dir.listener_cert(Listener::Web),
            dir.listener_key(Listener::Web),
        );
        let before = std::fs::read(&cert).unwrap();

        // Cut while writing: a key.new and half a cert.new. Undone.
        std::fs::write(new_name(&key), &fresh.key_pem).unwrap();
        std::fs::write(new_name(&cert), &fresh.cert_pem[..100]).unwrap();
        recover(&dir).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), before);
        assert!(!new_name(&key).exists() && !new_name(&cert).exists());
        assert!(pair_fits(&cert, &key));

        // Cut between the renames: the key is new, the certificate waits. Finished.
        let chain = format!("{}{}", fresh.cert_pem, ca.cert.pem);
        std::fs::write(new_name(&cert), &chain).unwrap();
        std::fs::write(&key, &fresh.key_pem).unwrap();
        recover(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), chain);
        assert!(pair_fits(&cert, &key));

        // Whole: installed.
        let next = ca
            .issue_server(&["localhost".into()], time::Duration::days(90), now)
            .unwrap();
        install(&dir, Listener::Web, &next, &ca.cert.pem).unwrap();
        assert!(
            std::fs::read_to_string(&cert)
                .unwrap()
                .starts_with(&next.cert_pem)
        );
        assert!(pair_fits(&cert, &key));
    }
}
