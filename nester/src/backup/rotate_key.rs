//! Replacing the nester's backup key without ever locking it out: the new key's line is
//! appended to the account's `authorized_keys` through a session logged in with the old key,
//! a login with the new key is tried, and only then does the new key become the nester's and
//! the old key's line go (through the new key's session). A rotation cut anywhere is finished
//! by the next one; until the new key has logged in, the old one stays in use.

use anyhow::Context;

use super::key::{self, BackupKey};
use super::sftp::Remote;
use crate::config::BackupConfig;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::{Actor, Change};

fn fingerprint(key: &BackupKey) -> String {
    key.public_key()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string()
}

/// `text` without the lines of `key`.
fn without(text: &str, key: &BackupKey) -> String {
    let data = key.public_key().key_data();
    text.lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            !fields.windows(2).any(|w| {
                russh::keys::PublicKey::from_openssh(&format!("{} {}", w[0], w[1]))
                    .is_ok_and(|k| k.key_data() == data)
            })
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn holds(text: &str, key: &BackupKey) -> bool {
    without(text, key).lines().count() != text.lines().count()
}

/// Rotates the backup key; returns the new key's fingerprint. Audited.
pub async fn rotate(
    dir: &DataDir,
    config: &BackupConfig,
    db: &Db,
    actor: Actor,
) -> anyhow::Result<String> {
    let path = config.authorized_keys.as_deref().context(
        "[backup] authorized_keys is not set: say where the account's authorized_keys file is \
         (as its SFTP session sees it) for the nester to replace its key there",
    )?;
    finish(dir, config, path).await?;
    let old = key::load(&dir.backup_key())?;
    let next_path = dir.backup_key_next();
    let new = if next_path.exists() {
        key::load(&next_path)?
    } else {
        key::create_at(&next_path)?
    };
    {
        let remote = Remote::connect(config, &old).await?;
        let text = remote.read_text(path).await?;
        if !holds(&text, &new) {
            let mut grown = text.clone();
            if !grown.is_empty() && !grown.ends_with('\n') {
                grown.push('\n');
            }
            grown.push_str(&key::authorized_keys_line(&new)?);
            grown.push('\n');
            remote.rewrite(path, &grown).await?;
        }
    }
    Remote::connect(config, &new)
        .await
        .context("the new backup key does not log in (the old one stays in use)")?;
    // The new key is the nester's from here; the old one is kept until its line is gone.
    std::fs::rename(dir.backup_key(), dir.backup_key_old())?;
    std::fs::rename(&next_path, dir.backup_key())?;
    finish(dir, config, path).await?;
    let change = Change::new("backup.key_rotate", format!("backup:{}", config.server))
        .with("previous", fingerprint(&old))
        .with("key", fingerprint(&new));
    db.audit(actor, change).await?;
    tracing::info!(key = %fingerprint(&new), "backup key rotated");
    Ok(fingerprint(&new))
}

/// Takes the old key's line off the server (through the current key's session) and forgets
/// the old key, when a rotation left one.
async fn finish(dir: &DataDir, config: &BackupConfig, path: &str) -> anyhow::Result<()> {
    let old_path = dir.backup_key_old();
    if !old_path.exists() {
        return Ok(());
    }
    let old = key::load(&old_path)?;
    let remote = Remote::connect(config, &key::load(&dir.backup_key())?).await?;
    let text = remote.read_text(path).await?;
    if holds(&text, &old) {
        remote.rewrite(path, &without(&text, &old)).await?;
    }
    std::fs::remove_file(old_path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::private::{Ed25519Keypair, PrivateKey};

    #[test]
    fn a_keys_lines_are_found_and_removed_whatever_their_options() {
        let a = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
        let b = PrivateKey::from(Ed25519Keypair::from_seed(&[2; 32]));
        let line = |k: &PrivateKey| k.public_key().to_openssh().unwrap();
        let text = format!(
            "# backups\nrestrict {}\n{} other@host\nfrom=\"10.0.0.0/8\" {}\n",
            line(&a),
            line(&b),
            line(&a)
        );
        assert!(holds(&text, &a) && holds(&text, &b));
        let kept = without(&text, &a);
        assert_eq!(kept, format!("# backups\n{} other@host\n", line(&b)));
        assert!(!holds(&kept, &a));
    }
}
