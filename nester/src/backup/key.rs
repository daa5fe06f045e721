//! The nester's own SSH key for backups: Ed25519, made on first use, kept in the data
//! directory (0600, OpenSSH format). The server's account gets its public half with
//! `restrict` (no forwarding, no terminal), and the server's sshd gives that account only
//! `internal-sftp` in a chroot (see the README).

use russh::keys::ssh_key::private::PrivateKey;

use crate::datadir::DataDir;
pub use crate::ssh::key_file::load;

/// The key type (OpenSSH's, from the SSH library).
pub use russh::keys::PrivateKey as BackupKey;

const COMMENT: &str = "seahawks-nester-backup";

/// The backup key, made now if there is none.
pub fn load_or_create(dir: &DataDir) -> anyhow::Result<PrivateKey> {
    let path = dir.backup_key();
    if path.exists() {
        return load(&path);
    }
    create_at(&path)
}

/// A new backup key written to `path` (which must not exist).
pub fn create_at(path: &std::path::Path) -> anyhow::Result<PrivateKey> {
    crate::ssh::key_file::create(path, COMMENT)
}

/// The `authorized_keys` line to install on the backup server's account.
pub fn authorized_keys_line(key: &PrivateKey) -> anyhow::Result<String> {
    Ok(format!("restrict {}", key.public_key().to_openssh()?))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_restricted() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        dir.create().unwrap();
        let key = load_or_create(&dir).unwrap();
        let again = load_or_create(&dir).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let mode = std::fs::metadata(dir.backup_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let line = authorized_keys_line(&key).unwrap();
        assert!(line.starts_with("restrict ssh-ed25519 AAAA"), "{line}");
        assert!(line.ends_with(COMMENT), "{line}");

        std::fs::set_permissions(dir.backup_key(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&dir).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
