//! The box's sshd trust, kept by the harvester: each cycle it fetches from the nester the
//! user CA keys and the KRL of revoked certificates (`/v1/ssh/trust`) and, when they
//! changed, writes them where sshd reads them (`[ssh]` in the config: `TrustedUserCAKeys`,
//! `RevokedKeys`), each replaced atomically. The KRL is installed only once `ssh-keygen -Q`
//! has read it: a KRL sshd cannot read would refuse every login.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use base64::Engine;
use shared::protocol::SshTrust;

use crate::config::SshTrustConfig;

/// Where a file is written before it replaces `path`.
pub(crate) fn staging(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".seahawks-new");
    path.with_file_name(name)
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    // sshd reads them as root; 0644 whatever the service's umask.
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    file.sync_all()?;
    Ok(())
}

pub(crate) fn replace(staged: &Path, path: &Path) -> anyhow::Result<()> {
    fs::rename(staged, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether `ssh-keygen` reads the KRL at `krl` (asked about the key file `keys`).
fn krl_reads(krl: &Path, keys: &Path) -> anyhow::Result<()> {
    let output = Command::new("ssh-keygen")
        .arg("-Q")
        .arg("-f")
        .arg(krl)
        .arg(keys)
        .output()
        .context("cannot run ssh-keygen to check the KRL (is openssh-client installed?)")?;
    // 0: not revoked, 1: revoked; anything else is an error (an unreadable KRL).
    match output.status.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!(
            "ssh-keygen cannot read the nester's KRL: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// The version of the trust installed at `config`: the KRL's own version field.
pub fn installed_version(config: &SshTrustConfig) -> Option<u64> {
    let krl = fs::read(&config.revoked_keys).ok()?;
    (krl.len() >= 20 && krl.starts_with(b"SSHKRL\n\0"))
        .then(|| u64::from_be_bytes(krl[12..20].try_into().unwrap_or_default()))
}

/// Installs `trust` where the config says; `false` when both files already held it. On any
/// error the installed files are left as they were.
pub fn install(config: &SshTrustConfig, trust: &SshTrust) -> anyhow::Result<bool> {
    if trust.user_ca_keys.is_empty() {
        bail!("the nester sent no user CA key");
    }
    let krl = base64::engine::general_purpose::STANDARD
        .decode(&trust.krl)
        .context("the nester's KRL is not base64")?;
    let keys = format!("{}\n", trust.user_ca_keys.join("\n"));
    let same = |path: &Path, bytes: &[u8]| fs::read(path).is_ok_and(|b| b == bytes);
    if same(&config.revoked_keys, &krl) && same(&config.trusted_user_ca_keys, keys.as_bytes()) {
        return Ok(false);
    }
    let (new_krl, new_keys) = (
        staging(&config.revoked_keys),
        staging(&config.trusted_user_ca_keys),
    );
    let staged = write_synced(&new_krl, &krl)
        .and_then(|()| write_synced(&new_keys, keys.as_bytes()))
        .and_then(|()| krl_reads(&new_krl, &new_keys));
    if let Err(e) = staged {
        let _ = fs::remove_file(&new_krl);
        let _ = fs::remove_file(&new_keys);
        return Err(e);
    }
    // The revocations first: a new CA is never trusted before what it revoked is refused.
    replace(&new_krl, &config.revoked_keys)?;
    replace(&new_keys, &config.trusted_user_ca_keys)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBdSJcCSO5VcGlLhNiXzUSJ7Jk0rZFMkONUq+0w3B7YD test-ca";

    /// An empty KRL, as the nester encodes one: the header alone.
    fn empty_krl() -> Vec<u8> {
        let mut krl = b"SSHKRL\n\0".to_vec();
        krl.extend(1u32.to_be_bytes());
        krl.extend(3u64.to_be_bytes());
        krl.extend(0u64.to_be_bytes());
        krl.extend(0u64.to_be_bytes());
        krl.extend(0u32.to_be_bytes());
        krl.extend(0u32.to_be_bytes());
        krl
    }

    fn trust(krl: &[u8]) -> SshTrust {
        SshTrust {
            version: 3,
            user_ca_keys: vec![KEY.into()],
            krl: base64::engine::general_purpose::STANDARD.encode(krl),
        }
    }

    #[test]
    fn a_readable_krl_is_installed_once_and_an_unreadable_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let config = SshTrustConfig {
            trusted_user_ca_keys: dir.path().join("ca.pub"),
            revoked_keys: dir.path().join("revoked.krl"),
            host_key: None,
            host_certificate: None,
            host_names: Vec::new(),
        };
        assert_eq!(installed_version(&config), None);
        assert!(install(&config, &trust(&empty_krl())).unwrap());
        assert_eq!(installed_version(&config), Some(3), "the KRL's version");
        assert_eq!(
            fs::read_to_string(&config.trusted_user_ca_keys).unwrap(),
            format!("{KEY}\n")
        );
        assert_eq!(fs::read(&config.revoked_keys).unwrap(), empty_krl());
        assert!(
            !install(&config, &trust(&empty_krl())).unwrap(),
            "unchanged"
        );

        let mut broken = empty_krl();
        broken[9] = 9; // format version 9
        let err = format!("{:#}", install(&config, &trust(&broken)).unwrap_err());
        assert!(err.contains("cannot read the nester's KRL"), "{err}");
        assert_eq!(
            fs::read(&config.revoked_keys).unwrap(),
            empty_krl(),
            "left as it was"
        );
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "no staged file left: {left:?}");
        assert!(
            install(
                &config,
                &SshTrust {
                    krl: "%%".into(),
                    ..trust(&empty_krl())
                }
            )
            .is_err()
        );
    }
}
