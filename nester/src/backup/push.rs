//! Off-site backups: make one while serving, push it to the SFTP server, apply the retention
//! policy there, then download it again and verify it end to end. Each step says what failed
//! and leaves what was there: a backup that did not fully upload is never taken for one (the
//! next successful run removes its remains), and retention runs only after a successful
//! upload.

use std::path::Path;

use anyhow::Context;
use time::OffsetDateTime;

use super::retention::{self, Policy};
use super::sftp::Remote;
use super::{Verified, background, key};
use crate::audit::CheckpointKey;
use crate::config::BackupConfig;
use crate::datadir::DataDir;
use crate::db::Db;

/// What a run did.
#[derive(Debug)]
pub struct Pushed {
    pub name: String,
    pub bytes: u64,
    /// Backups removed by the retention policy.
    pub deleted: Vec<String>,
    /// The verification's outcome, when `[backup] verify` is on.
    pub verified: Option<Result<(), String>>,
}

fn size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for name in super::listing(dir)?
        .into_iter()
        .chain([super::manifest::FILE.to_string()])
    {
        total += std::fs::metadata(dir.join(name))?.len();
    }
    Ok(total)
}

/// Where a backup is made or downloaded to: beside the database, on the same disk, removed
/// when done.
fn work_dir(dir: &DataDir) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(dir.root())
        .with_context(|| format!("cannot make a work directory in {}", dir.root().display()))
}

/// Makes, pushes, prunes and (when configured) verifies a backup, on the backup thread.
pub async fn run(
    dir: &DataDir,
    config: &BackupConfig,
    db: &Db,
    now: OffsetDateTime,
) -> anyhow::Result<Pushed> {
    let (dir, config, db) = (dir.clone(), config.clone(), db.clone());
    background::run_async(move || async move { run_here(&dir, &config, &db, now).await }).await
}

async fn run_here(
    dir: &DataDir,
    config: &BackupConfig,
    db: &Db,
    now: OffsetDateTime,
) -> anyhow::Result<Pushed> {
    let key = key::load_or_create(dir)?;
    // The server first: an unreachable one costs no snapshot.
    let remote = Remote::connect(config, &key).await?;
    let work = work_dir(dir)?;
    let (data, into) = (dir.clone(), work.path().to_path_buf());
    let local = super::background::run(move || super::create(&data, &into, now)).await?;
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .context("the backup has no name")?;
    let bytes = size(&local)?;
    remote.upload(&local, &name).await?;
    drop(work);
    db.record_backup(name.clone(), bytes).await?;
    tracing::info!(backup = %name, bytes, server = %config.server, "backup pushed");

    for cut in remote.remove_partials().await? {
        tracing::info!(upload = %cut, "the remains of a cut upload removed");
    }
    let names: Vec<String> = remote.list().await?.into_iter().map(|b| b.name).collect();
    let policy = Policy {
        keep_last: config.keep_last,
        keep_daily: config.keep_daily,
        keep_weekly: config.keep_weekly,
    };
    let deleted = retention::to_delete(&names, policy);
    for old in &deleted {
        remote.remove(old).await?;
        db.forget_backup(old.clone()).await?;
        tracing::info!(backup = %old, "backup removed by the retention policy");
    }
    let verified = if config.verify {
        Some(
            verify(&remote, &name, dir, db)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:#}")),
        )
    } else {
        None
    };
    Ok(Pushed {
        name,
        bytes,
        deleted,
        verified,
    })
}

/// Downloads backup `name` and verifies it end to end (the checks on the backup thread); the
/// outcome is recorded.
pub async fn verify(
    remote: &Remote,
    name: &str,
    dir: &DataDir,
    db: &Db,
) -> anyhow::Result<Verified> {
    let work = work_dir(dir)?;
    let outcome = async {
        let local = remote.download(name, work.path()).await?;
        let expected = CheckpointKey::load(dir).ok().map(|k| k.public());
        let scratch = work.path().join("check");
        std::fs::create_dir(&scratch)?;
        super::verify(&local, expected.as_deref(), &scratch).await
    }
    .await;
    let record = outcome.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
    match &record {
        Ok(()) => tracing::info!(backup = %name, "backup verified"),
        Err(e) => tracing::error!(backup = %name, error = %e, "backup does not verify"),
    }
    db.record_verification(name.to_string(), record).await?;
    outcome
}

/// Downloads backup `name` and restores it into `into` (verified first); works on a new
/// machine, where there is no data directory yet.
pub async fn restore(
    remote: &Remote,
    name: &str,
    into: &Path,
) -> anyhow::Result<super::manifest::Manifest> {
    let parent = into
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let work = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(parent)?;
    let local = remote.download(name, work.path()).await?;
    super::restore(&local, into).await
}
