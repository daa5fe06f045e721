//! A backup's manifest: what it holds (each file's SHA-256), what the database held (schema
//! version, rows per table, the audit chain's head and the last signed checkpoint of it), when
//! and by which nester, signed with the nester's Ed25519 key. `verify` trusts nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::Checkpoint;
use crate::audit::checkpoint::signed;

pub const FILE: &str = "manifest.json";
/// The database inside a backup, gzip-compressed.
pub const DATABASE: &str = "nester.db.gz";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// RFC 3339.
    pub created: String,
    pub nester_version: String,
    /// The database's schema version (its migrations).
    pub schema_version: i64,
    /// Rows per table.
    pub tables: BTreeMap<String, i64>,
    /// Every file of the backup but this one, by path inside it: SHA-256, hex.
    pub files: BTreeMap<String, String>,
    /// The audit chain in the database: its last entry and that entry's hash.
    pub audit_seq: i64,
    pub audit_head: String,
    /// The last signed checkpoint at or before that entry.
    pub checkpoint: Option<Checkpoint>,
    /// The Ed25519 key (hex) that signed this manifest: the nester's audit key.
    pub key: String,
    /// Hex signature of [`Manifest::signed_bytes`].
    #[serde(default)]
    pub signature: String,
}

impl Manifest {
    /// What is signed: the manifest without its signature, as JSON with a purpose prefix.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        let body = serde_json::to_vec(&unsigned).unwrap_or_default();
        [b"seahawks-backup-manifest-v1\n".as_slice(), &body].concat()
    }

    pub fn signature_holds(&self) -> bool {
        signed(&self.key, &self.signed_bytes(), &self.signature)
    }
}
