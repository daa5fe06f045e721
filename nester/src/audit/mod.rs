//! The audit log's guarantees beyond the database: signed checkpoints of its head, written
//! out of the database (`checkpoint.rs`), and the verification that walks the chain against
//! them (`verify.rs`, `nester audit verify`). The chain itself is `db/audit.rs`.

pub mod checkpoint;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointKey};
pub use verify::{Broken, Verified, verify};

use crate::datadir::DataDir;
use crate::db::Db;

/// The chain of `db` held against the checkpoints in `dir`, read in the order that makes a
/// concurrent writer harmless: the checkpoints first, then the chain.
pub async fn check(dir: &DataDir, db: &Db) -> anyhow::Result<Result<Verified, Broken>> {
    let key = CheckpointKey::load(dir)?;
    let checkpoints = checkpoint::read_all(&dir.audit_checkpoints())?;
    let entries = db.audit_chain().await?;
    Ok(verify(&entries, &checkpoints, &key.public()))
}
