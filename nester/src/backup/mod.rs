//! Backups of a nester's data directory, made while it serves: a consistent snapshot of the
//! database (SQLite's online backup from a read connection: in WAL mode the writer goes on),
//! compressed, with the PKI (the CA and keys) and the audit checkpoints, and a signed
//! manifest (`manifest.rs`). `verify` checks a backup end to end as a restore would need it;
//! `restore` makes a data directory from a verified one. Both trust only the manifest's
//! signature and hashes, never the files' names.

pub mod background;
pub mod key;
pub mod manifest;
pub mod push;
pub mod retention;
pub mod rotate_key;
pub mod schedule;
pub mod sftp;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::db::snapshot::{self, Snapshot};
use anyhow::{Context, bail, ensure};

use crate::audit::checkpoint::{self, Checkpoint, CheckpointKey, hex};
use crate::datadir::{DataDir, write_new};
use manifest::{DATABASE, FILE, Manifest};

const CHECKPOINTS: &str = "audit-checkpoints.jsonl";

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

/// Makes a backup of the data directory `dir` (served or not) in a new directory under
/// `into`; returns its path.
pub fn create(dir: &DataDir, into: &Path, now: time::OffsetDateTime) -> anyhow::Result<PathBuf> {
    let key = CheckpointKey::load(dir)?;
    let stamp = crate::clock::rfc3339(now);
    // To the millisecond, so two backups never share a name (names sort by time).
    let name = format!(
        "{}{}.{:03}Z",
        sftp::PREFIX,
        stamp.trim_end_matches('Z').replace(':', ""),
        now.millisecond()
    );
    let out = into.join(name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::create_dir(out.join("pki")).context("cannot create the backup's pki directory")?;
    // The checkpoints first: any of them is of entries the snapshot already holds.
    let checkpoints = checkpoint::read_all(&dir.audit_checkpoints())?;
    if dir.audit_checkpoints().exists() {
        std::fs::copy(dir.audit_checkpoints(), out.join(CHECKPOINTS))
            .context("cannot copy the audit checkpoints")?;
    } else {
        std::fs::write(out.join(CHECKPOINTS), b"")?;
    }
    let snapshot = out.join("snapshot.db");
    snapshot::copy(&dir.database(), &snapshot)
        .context("cannot snapshot the database (is the disk full?)")?;
    let census = Snapshot::open(&snapshot)?.census()?;
    let audit_seq = census.audit_seq;
    gzip(&snapshot, &out.join(DATABASE))?;
    std::fs::remove_file(&snapshot)?;
    for entry in std::fs::read_dir(dir.pki_dir())? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), out.join("pki").join(entry.file_name()))?;
        }
    }
    let mut files = BTreeMap::new();
    for name in listing(&out)? {
        files.insert(name.clone(), sha256_file(&out.join(&name))?);
    }
    let mut manifest = Manifest {
        format: 1,
        created: stamp,
        nester_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: census.schema_version,
        tables: census.tables,
        files,
        audit_seq,
        audit_head: hex(&census.audit_head),
        checkpoint: checkpoints.into_iter().rfind(|c| c.seq <= audit_seq),
        key: key.public(),
        signature: String::new(),
    };
    manifest.signature = key.sign_bytes(&manifest.signed_bytes());
    write_new(
        &out.join(FILE),
        &serde_json::to_vec_pretty(&manifest)?,
        0o600,
    )?;
    Ok(out)
}

fn gzip(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut input = std::fs::File::open(from)?;
    let file =
        std::fs::File::create(to).with_context(|| format!("cannot write {}", to.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    std::io::copy(&mut input, &mut encoder)
        .context("cannot compress the snapshot (is the disk full?)")?;
    encoder.finish()?.sync_all()?;
    Ok(())
}

/// Decompresses `from` into `to`, not synced: a copy to check; `restore` syncs what it keeps.
fn gunzip(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut decoder = flate2::read::GzDecoder::new(std::fs::File::open(from)?);
    let mut file =
        std::fs::File::create(to).with_context(|| format!("cannot write {}", to.display()))?;
    std::io::copy(&mut decoder, &mut file).context("the database copy does not decompress")?;
    file.flush()?;
    Ok(())
}

/// The files of a backup, by path inside it, the manifest left out.
fn listing(backup: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(backup)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.file_type()?.is_dir() {
            for inner in std::fs::read_dir(entry.path())? {
                names.push(format!("{name}/{}", inner?.file_name().to_string_lossy()));
            }
        } else if name != FILE {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What a verified backup holds.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    /// The database, decompressed into the caller's directory.
    pub database: PathBuf,
}

/// Checks the backup at `backup` as a restore needs it: the manifest's signature (by
/// `expected_key` when given), every file's SHA-256 and no file more or less, the database
/// decompressed into `work` passes `integrity_check`, has the rows the manifest counted, and
/// its audit chain verifies up to the recorded head against the backed-up checkpoints.
pub async fn verify(
    backup: &Path,
    expected_key: Option<&str>,
    work: &Path,
) -> anyhow::Result<Verified> {
    let (backup, key, work) = (
        backup.to_path_buf(),
        expected_key.map(str::to_string),
        work.to_path_buf(),
    );
    background::run(move || check(&backup, key.as_deref(), &work)).await
}

fn check(backup: &Path, expected_key: Option<&str>, work: &Path) -> anyhow::Result<Verified> {
    let text = std::fs::read(backup.join(FILE))
        .with_context(|| format!("{} has no {FILE}", backup.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text).context("the manifest is not valid")?;
    ensure!(
        manifest.signature_holds(),
        "the manifest's signature does not hold: it was changed after the backup"
    );
    if let Some(key) = expected_key {
        ensure!(
            manifest.key == key,
            "the backup was signed by another nester's key ({}), not this one's ({key})",
            manifest.key
        );
    }
    let present = listing(backup)?;
    let listed: Vec<String> = manifest.files.keys().cloned().collect();
    ensure!(
        present == listed,
        "the backup's files are not the ones its manifest lists: {present:?} against {listed:?}"
    );
    for (name, sum) in &manifest.files {
        ensure!(
            &sha256_file(&backup.join(name))? == sum,
            "{name} is not as backed up (its SHA-256 differs)"
        );
    }
    let database = work.join("nester.db");
    gunzip(&backup.join(DATABASE), &database)?;
    let copy = Snapshot::open(&database)?;
    let check = copy.integrity()?;
    ensure!(
        check == "ok",
        "the database copy fails integrity_check: {check}"
    );
    let census = copy.census()?;
    let (version, tables) = (census.schema_version, census.tables);
    let (seq, head) = (census.audit_seq, hex(&census.audit_head));
    ensure!(
        version == manifest.schema_version,
        "schema version {version}, the manifest says {}",
        manifest.schema_version
    );
    ensure!(
        tables == manifest.tables,
        "the row counts differ from the manifest's"
    );
    ensure!(
        (seq, head.as_str()) == (manifest.audit_seq, manifest.audit_head.as_str()),
        "the audit chain's head differs from the manifest's"
    );
    let checkpoints: Vec<Checkpoint> = checkpoint::read_all(&backup.join(CHECKPOINTS))?;
    let entries = copy.audit_chain()?;
    drop(copy);
    if let Err(broken) = crate::audit::verify(&entries, &checkpoints, &manifest.key) {
        bail!("in the backup, {broken}");
    }
    Ok(Verified { manifest, database })
}

/// Makes the data directory `into` (which must not exist, or be empty) from the backup,
/// verified first.
pub async fn restore(backup: &Path, into: &Path) -> anyhow::Result<Manifest> {
    if into.exists() && std::fs::read_dir(into)?.next().is_some() {
        bail!(
            "{} is not empty: restore into a new directory (never over a live one)",
            into.display()
        );
    }
    let dir = DataDir::new(into);
    dir.create()?;
    let verified = verify(backup, None, into).await?;
    std::fs::File::open(&verified.database)?.sync_all()?;
    std::fs::rename(&verified.database, dir.database())?;
    std::fs::File::open(dir.root())?.sync_all()?;
    for name in verified
        .manifest
        .files
        .keys()
        .filter(|n| n.starts_with("pki/"))
    {
        let to = dir.root().join(name);
        let mode = if name.ends_with(".pem") { 0o644 } else { 0o600 };
        write_new(&to, &std::fs::read(backup.join(name))?, mode)?;
    }
    std::fs::copy(backup.join(CHECKPOINTS), dir.audit_checkpoints())?;
    Ok(verified.manifest)
}
