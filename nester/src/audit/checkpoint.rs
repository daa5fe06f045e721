//! Checkpoints: the nester signs `{seq, head, time}` of the audit chain with its own Ed25519
//! key (`pki/audit.key`, 0600) every minute or every 100 entries, and appends each to
//! `audit-checkpoints.jsonl` beside the database. A chain shorter than the last checkpoint
//! (a cut tail), or different at a checkpointed entry (a rebuilt chain), is then caught.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::datadir::{DataDir, write_new};

/// One signed statement: "the chain had `seq` entries, the last with hash `head`, at `time`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    /// Hex SHA-256 chain hash of entry `seq` (64 zeros for an empty chain).
    pub head: String,
    /// RFC 3339.
    pub time: String,
    /// Hex Ed25519 public key that signed it.
    pub key: String,
    /// Hex Ed25519 signature of [`Checkpoint::signed_bytes`].
    pub sig: String,
}

impl Checkpoint {
    fn signed_bytes(seq: i64, head: &str, time: &str) -> Vec<u8> {
        serde_json::to_vec(&("seahawks-audit-checkpoint-v1", seq, head, time)).unwrap_or_default()
    }

    /// Whether `key` (hex) signed this checkpoint, as it reads.
    pub fn signed_by(&self, key: &str) -> bool {
        let (Some(public), Some(sig)) = (unhex(key), unhex(&self.sig)) else {
            return false;
        };
        self.key == key
            && UnparsedPublicKey::new(&ED25519, public)
                .verify(&Self::signed_bytes(self.seq, &self.head, &self.time), &sig)
                .is_ok()
    }
}

/// Whether `sig` (hex) is the Ed25519 signature by `key` (hex) of `bytes`.
pub fn signed(key: &str, bytes: &[u8], sig: &str) -> bool {
    let (Some(public), Some(sig)) = (unhex(key), unhex(sig)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public)
        .verify(bytes, &sig)
        .is_ok()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The nester's checkpoint key.
pub struct CheckpointKey(Ed25519KeyPair);

impl CheckpointKey {
    /// Loads the key, making it first when the data directory has none yet (`nester init`,
    /// or a data directory from before the audit log).
    pub fn load_or_create(dir: &DataDir) -> anyhow::Result<Self> {
        let path = dir.audit_key();
        if !path.exists() {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("cannot generate the audit checkpoint key"))?;
            write_new(&path, pkcs8.as_ref(), 0o600)?;
        }
        Self::load(dir)
    }

    /// Loads the key; an error when there is none (verification never makes one).
    pub fn load(dir: &DataDir) -> anyhow::Result<Self> {
        let path = dir.audit_key();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let pair = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 key", path.display()))?;
        Ok(Self(pair))
    }

    /// The public key, hex: what every checkpoint must be signed by.
    pub fn public(&self) -> String {
        hex(self.0.public_key().as_ref())
    }

    /// Signs `bytes` (something else the nester vouches for, such as a backup's manifest);
    /// hex.
    pub fn sign_bytes(&self, bytes: &[u8]) -> String {
        hex(self.0.sign(bytes).as_ref())
    }

    pub fn sign(&self, seq: i64, head: &[u8], time: &str) -> Checkpoint {
        let head = hex(head);
        let sig = self.0.sign(&Checkpoint::signed_bytes(seq, &head, time));
        Checkpoint {
            seq,
            head,
            time: time.to_string(),
            key: self.public(),
            sig: hex(sig.as_ref()),
        }
    }
}

/// Appends `checkpoint` to `path` as one line, synced before returning.
pub fn append(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(checkpoint)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // One write: a reader sees the whole line or none of it.
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(())
}

/// Every checkpoint in `path`, in order; none when there is no file yet. A last line without
/// its newline is one being written now, and left for next time.
pub fn read_all(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a checkpoint", path.display(), i + 1))
        })
        .collect()
}
