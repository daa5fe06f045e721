//! Replacing an SSH CA (`nester ssh rotate user-ca|host-ca`) with no moment where a valid
//! certificate is refused.
//!
//! A rotation has three phases, fixed when it starts:
//! 1. until `switch_ms` the new CA is trusted (harvesters install it for sshd, the
//!    `known_hosts` line lists it) but the old one still signs: every box learns the new CA
//!    before any certificate from it exists;
//! 2. until `retire_ms` the new CA signs and the old one stays trusted, so what it signed
//!    before the switch keeps working until it expires;
//! 3. then the old CA is retired: its key deleted, no longer trusted anywhere.
//!
//! Files, beside the CA's key file `K` (`pki/ssh_user_ca` or `pki/ssh_host_ca`): `K` is
//! always the newest CA, `K.previous` the one being retired and `K.rotation.json` the
//! rotation, both only during one. Crash safety: the new key is written as `K.next` and
//! the old one linked as `K.previous`, then `K.rotation.json` is written (the commit), then
//! `K.next` replaces `K`. Loading finishes a committed rotation and removes the remains of
//! an uncommitted one or of a retirement (which deletes the JSON first).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

use super::ca::{Purpose, SshCa};
use crate::datadir::DataDir;
use crate::ssh::key_file;

/// A rotation in progress, as `K.rotation.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// SHA256 fingerprints of the CA being retired and of the new one.
    pub previous: String,
    pub next: String,
    pub started_ms: i64,
    /// From then on the new CA signs.
    pub switch_ms: i64,
    /// From then on the previous CA is no longer trusted.
    pub retire_ms: i64,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

struct Files {
    key: PathBuf,
    next: PathBuf,
    previous: PathBuf,
    rotation: PathBuf,
}

impl Files {
    fn of(dir: &DataDir, purpose: Purpose) -> Self {
        let key = purpose.path(dir);
        Self {
            next: sibling(&key, ".next"),
            previous: sibling(&key, ".previous"),
            rotation: sibling(&key, ".rotation.json"),
            key,
        }
    }

    fn rotation(&self) -> anyhow::Result<Option<Rotation>> {
        match std::fs::read(&self.rotation) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is corrupt", self.rotation.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.rotation.display())),
        }
    }

    /// Finishes a committed rotation, removes what an uncommitted one or a retirement left.
    fn recover(&self) -> anyhow::Result<Option<Rotation>> {
        let rotation = self.rotation()?;
        let exists = |p: &Path| p.try_exists().unwrap_or(false);
        if rotation.is_some() {
            if exists(&self.next) {
                rename(&self.next, &self.key)?;
            }
        } else {
            for stale in [&self.next, &self.previous] {
                if exists(stale) {
                    std::fs::remove_file(stale)
                        .with_context(|| format!("cannot remove {}", stale.display()))?;
                }
            }
        }
        Ok(rotation)
    }
}

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to).with_context(|| format!("cannot replace {}", to.display()))?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// One purpose's CAs: the newest and, during a rotation, the previous one.
pub struct CaSet {
    pub newest: SshCa,
    pub previous: Option<(SshCa, Rotation)>,
}

impl CaSet {
    /// The CAs for `purpose` (the first made now for a data directory without one).
    pub fn load(dir: &DataDir, purpose: Purpose) -> anyhow::Result<Self> {
        let files = Files::of(dir, purpose);
        let rotation = files.recover()?;
        let newest = if files.key.exists() {
            SshCa::new(purpose, key_file::load(&files.key)?)
        } else {
            SshCa::new(purpose, key_file::create(&files.key, purpose.comment())?)
        };
        let previous = match rotation {
            Some(rotation) => {
                ensure!(
                    rotation.next == newest.fingerprint(),
                    "{} names CA {} but {} is {}",
                    files.rotation.display(),
                    rotation.next,
                    files.key.display(),
                    newest.fingerprint()
                );
                let previous = SshCa::new(purpose, key_file::load(&files.previous)?);
                Some((previous, rotation))
            }
            None => None,
        };
        Ok(Self { newest, previous })
    }

    /// The CA that signs at `now_ms`.
    pub fn signing(&self, now_ms: i64) -> &SshCa {
        match &self.previous {
            Some((previous, rotation)) if now_ms < rotation.switch_ms => previous,
            _ => &self.newest,
        }
    }

    /// Every CA trusted at `now_ms`: the signing one first. The previous CA is not, from
    /// its retirement time on, even before its files are removed.
    pub fn trusted(&self, now_ms: i64) -> Vec<&SshCa> {
        let signing = self.signing(now_ms);
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, r)| now_ms < r.retire_ms)
            .map(|(ca, _)| ca);
        let mut all = vec![signing];
        all.extend(
            std::iter::once(&self.newest)
                .chain(previous)
                .filter(|ca| ca.fingerprint() != signing.fingerprint()),
        );
        all
    }

    pub fn rotation(&self) -> Option<&Rotation> {
        self.previous.as_ref().map(|(_, r)| r)
    }
}

/// Starts a rotation of `purpose`'s CA at `now_ms`: the new CA signs from `switch_ms`, the
/// old one is retired at `retire_ms`. Refused while another rotation of it runs.
pub fn rotate(
    dir: &DataDir,
    purpose: Purpose,
    now_ms: i64,
    switch_ms: i64,
    retire_ms: i64,
) -> anyhow::Result<Rotation> {
    ensure!(
        now_ms <= switch_ms && switch_ms <= retire_ms,
        "a rotation switches after it starts and retires after it switches"
    );
    let files = Files::of(dir, purpose);
    if let Some(running) = files.recover()? {
        bail!(
            "a rotation of the SSH {} is in progress: the previous CA retires at {}; wait for \
             it, or end it now with `nester ssh retire {}`",
            purpose.noun(),
            crate::clock::rfc3339_ms(running.retire_ms),
            purpose.argument()
        );
    }
    let old = CaSet::load(dir, purpose)?.newest;
    let new = key_file::create(&files.next, purpose.comment())?;
    std::fs::hard_link(&files.key, &files.previous)
        .with_context(|| format!("cannot keep {}", files.previous.display()))?;
    let rotation = Rotation {
        previous: old.fingerprint(),
        next: SshCa::new(purpose, new).fingerprint(),
        started_ms: now_ms,
        switch_ms,
        retire_ms,
    };
    let staged = sibling(&files.rotation, ".tmp");
    let _ = std::fs::remove_file(&staged);
    crate::datadir::write_new(&staged, &serde_json::to_vec_pretty(&rotation)?, 0o600)?;
    rename(&staged, &files.rotation)?;
    rename(&files.next, &files.key)?;
    Ok(rotation)
}

/// Retires the previous CA of `purpose` when its rotation's `retire_ms` is past `now_ms`
/// (`i64::MAX`: now, whatever the plan); the rotation ended, if one did.
pub fn retire_if_due(
    dir: &DataDir,
    purpose: Purpose,
    now_ms: i64,
) -> anyhow::Result<Option<Rotation>> {
    let files = Files::of(dir, purpose);
    let Some(rotation) = files.recover()? else {
        return Ok(None);
    };
    if now_ms < rotation.retire_ms {
        return Ok(None);
    }
    std::fs::remove_file(&files.rotation)
        .with_context(|| format!("cannot remove {}", files.rotation.display()))?;
    files.recover()?;
    Ok(Some(rotation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, DataDir) {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        dir.create().unwrap();
        (temp, dir)
    }

    #[test]
    fn the_new_ca_is_trusted_first_signs_at_the_switch_and_the_old_one_goes_at_retirement() {
        let (_t, dir) = dir();
        let first = CaSet::load(&dir, Purpose::User)
            .unwrap()
            .newest
            .fingerprint();
        let rotation = rotate(&dir, Purpose::User, 1_000, 2_000, 5_000).unwrap();
        assert_eq!(rotation.previous, first);
        let set = CaSet::load(&dir, Purpose::User).unwrap();
        let fps =
            |t: i64| -> Vec<String> { set.trusted(t).iter().map(|c| c.fingerprint()).collect() };
        assert_eq!(set.signing(1_500).fingerprint(), first, "before the switch");
        assert_eq!(fps(1_500), [first.clone(), rotation.next.clone()]);
        assert_eq!(set.signing(2_000).fingerprint(), rotation.next);
        assert_eq!(fps(2_000), [rotation.next.clone(), first]);
        assert_eq!(
            fps(5_000),
            std::slice::from_ref(&rotation.next),
            "retired on time, files or not"
        );

        let again = rotate(&dir, Purpose::User, 1_000, 2_000, 5_000).unwrap_err();
        assert!(format!("{again:#}").contains("in progress"), "{again:#}");
        assert!(retire_if_due(&dir, Purpose::User, 4_999).unwrap().is_none());
        assert_eq!(
            retire_if_due(&dir, Purpose::User, 5_000).unwrap(),
            Some(rotation.clone())
        );
        let after = CaSet::load(&dir, Purpose::User).unwrap();
        assert!(after.previous.is_none());
        assert_eq!(
            after
                .trusted(9_000)
                .iter()
                .map(|c| c.fingerprint())
                .collect::<Vec<_>>(),
            [rotation.next]
        );
        let names: Vec<_> = std::fs::read_dir(dir.pki_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("ssh_user_ca"))
            .collect();
        assert_eq!(names, ["ssh_user_ca"], "the old key is deleted");
        // The host CA was never touched.
        assert!(CaSet::load(&dir, Purpose::Host).unwrap().previous.is_none());
    }

    #[test]
    fn a_crash_before_the_commit_leaves_the_old_ca_and_one_after_it_the_rotation() {
        let (_t, dir) = dir();
        let files = Files::of(&dir, Purpose::Host);
        let first = CaSet::load(&dir, Purpose::Host)
            .unwrap()
            .newest
            .fingerprint();
        // Uncommitted: a new key and the link, no JSON.
        key_file::create(&files.next, "x").unwrap();
        std::fs::hard_link(&files.key, &files.previous).unwrap();
        let set = CaSet::load(&dir, Purpose::Host).unwrap();
        assert_eq!(set.newest.fingerprint(), first);
        assert!(set.previous.is_none());
        assert!(!files.next.exists() && !files.previous.exists());

        // Committed, crashed before `K.next` replaced `K`.
        let rotation = rotate(&dir, Purpose::Host, 0, 0, 10).unwrap();
        std::fs::rename(&files.key, &files.next).unwrap();
        std::fs::hard_link(&files.previous, &files.key).unwrap();
        let set = CaSet::load(&dir, Purpose::Host).unwrap();
        assert_eq!(set.newest.fingerprint(), rotation.next);
        assert_eq!(set.previous.as_ref().unwrap().0.fingerprint(), first);
    }
}
