//! An Ed25519 SSH private key in a file of its own, OpenSSH format, 0600: the backup key
//! and the SSH certificate authorities. A file others may read is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, PrivateKey};

use crate::datadir::write_new;

/// A new key written to `path` (which must not exist).
pub fn create(path: &Path, comment: &str) -> anyhow::Result<PrivateKey> {
    let mut seed = [0u8; 32];
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let text = key.to_openssh(LineEnding::LF)?;
    write_new(path, text.as_bytes(), 0o600)?;
    Ok(key)
}

/// A key from its file.
pub fn load(path: &Path) -> anyhow::Result<PrivateKey> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} is readable by others (mode {mode:o}); chmod 600 it",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    PrivateKey::from_openssh(text)
        .with_context(|| format!("{} is not an OpenSSH private key", path.display()))
}
