//! `nester backup`: backups of the data directory made while the nester serves. `create`,
//! `verify PATH` and `restore PATH` work on local copies; with `[backup]` configured, `run`
//! pushes one to the SFTP server now, `list` shows the server's, and `verify NAME` /
//! `restore NAME` download one first. `key` prints the line to install on the server.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::audit::CheckpointKey;
use crate::backup::{self, push, sftp::Remote};
use crate::clock::rfc3339_ms;
use crate::config::{BackupConfig, Config};
use crate::datadir::DataDir;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Back up the data directory now, into a new directory under `--to`.
    Create {
        #[arg(long)]
        to: PathBuf,
    },
    /// The `authorized_keys` line for the backup server's account (makes the key if needed).
    Key,
    /// Back up now to the backup server, apply the retention policy there, verify.
    Run,
    /// Replace the backup key now: the new key is installed through the old key's session,
    /// tried, and only then is the old one removed (needs `[backup] authorized_keys`).
    RotateKey,
    /// The backups on the backup server: size, when pushed, when last verified.
    List,
    /// Check a backup: signature, every file's SHA-256, the database's integrity, its row
    /// counts and its audit chain. A directory is checked where it is; a name (default: the
    /// newest) is downloaded from the backup server first.
    Verify { backup: Option<String> },
    /// Make a new data directory from a backup (verified first); never over an existing one.
    /// A directory, or a name on the backup server.
    Restore {
        backup: String,
        #[arg(long)]
        into: PathBuf,
        /// The backup key, on a machine where the data directory is gone (default: the one
        /// in the data directory).
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

fn remote_config(config: &Config) -> anyhow::Result<&BackupConfig> {
    config.backup.as_ref().context(
        "no [backup] section in the configuration: say where backups go (server, user, dir, host_key)",
    )
}

async fn connect(config: &Config, key: Option<&Path>) -> anyhow::Result<Remote> {
    let dir = DataDir::new(&config.data_dir);
    let key = match key {
        Some(path) => backup::key::load(path)?,
        None => backup::key::load(&dir.backup_key())?,
    };
    Remote::connect(remote_config(config)?, &key).await
}

/// A local backup rather than a name on the server: a path (holds a `/`) or a directory here.
fn is_local(backup: &str) -> bool {
    backup.contains('/') || Path::new(backup).is_dir()
}

pub async fn run(command: Command, config_path: &Path) -> anyhow::Result<()> {
    // Local copies verify and restore without a configuration (on a new machine).
    match command {
        Command::Verify { backup: Some(path) } if is_local(&path) => {
            // Signed by this nester, when its data directory is here to say so.
            let expected = Config::load(config_path)
                .ok()
                .and_then(|c| CheckpointKey::load(&DataDir::new(&c.data_dir)).ok())
                .map(|k| k.public());
            let work = tempfile::tempdir()?;
            let v = backup::verify(Path::new(&path), expected.as_deref(), work.path()).await?;
            print_verified(&v);
            return Ok(());
        }
        Command::Restore {
            backup: path, into, ..
        } if is_local(&path) => {
            let manifest = backup::restore(Path::new(&path), &into).await?;
            print_restored(&manifest, &into);
            return Ok(());
        }
        _ => {}
    }
    let config = Config::load(config_path)?;
    let dir = DataDir::new(&config.data_dir);
    match command {
        Command::Create { to } => {
            let now = crate::clock::Clock::default().now();
            let made =
                tokio::task::spawn_blocking(move || backup::create(&dir, &to, now)).await??;
            println!("backup: {}", made.display());
        }
        Command::Key => {
            let key = backup::key::load_or_create(&dir)?;
            println!("{}", backup::key::authorized_keys_line(&key)?);
            eprintln!(
                "Add this line to the backup account's ~/.ssh/authorized_keys on the backup server \
                 (the key is {}).",
                dir.backup_key().display()
            );
        }
        Command::Run => {
            let db = dir.open_database()?;
            let now = db.clock().now();
            let pushed = push::run(&dir, remote_config(&config)?, &db, now).await?;
            println!("pushed {} ({} bytes)", pushed.name, pushed.bytes);
            for old in &pushed.deleted {
                println!("removed {old} (retention policy)");
            }
            match pushed.verified {
                Some(Ok(())) => println!("verified {}", pushed.name),
                Some(Err(e)) => anyhow::bail!("the backup just pushed does not verify: {e}"),
                None => {}
            }
        }
        Command::RotateKey => {
            let db = dir.open_database()?;
            let actor = crate::db::audit::Actor::cli();
            let key = backup::rotate_key::rotate(&dir, remote_config(&config)?, &db, actor).await?;
            println!("the backup key is now {key}; the previous one is removed from the server");
        }
        Command::List => {
            let db = dir.open_database()?;
            let remote = connect(&config, None).await?;
            let records = db.backups().await?;
            println!(
                "{:<36} {:>12}  {:<22} verified",
                "backup", "bytes", "pushed"
            );
            for copy in remote.list().await? {
                let record = records.iter().find(|r| r.name == copy.name);
                let pushed = record.map_or("?".into(), |r| rfc3339_ms(r.pushed_ms));
                let verified = match record {
                    Some(r) => match (&r.verified_ms, &r.verify_error) {
                        (Some(at), None) => format!("ok, {}", rfc3339_ms(*at)),
                        (Some(at), Some(e)) => format!("FAILED {}: {e}", rfc3339_ms(*at)),
                        (None, _) => "never".into(),
                    },
                    None => "never (not pushed by this nester)".into(),
                };
                println!(
                    "{:<36} {:>12}  {pushed:<22} {verified}",
                    copy.name, copy.bytes
                );
            }
        }
        Command::Verify { backup: name } => {
            let db = dir.open_database()?;
            let remote = connect(&config, None).await?;
            let name = match name {
                Some(name) => name,
                None => {
                    remote
                        .list()
                        .await?
                        .pop()
                        .context("there is no backup on the backup server yet")?
                        .name
                }
            };
            let v = push::verify(&remote, &name, &dir, &db).await?;
            print!("{name}: ");
            print_verified(&v);
        }
        Command::Restore {
            backup: name,
            into,
            key,
        } => {
            let remote = connect(&config, key.as_deref()).await?;
            let manifest = push::restore(&remote, &name, &into).await?;
            print_restored(&manifest, &into);
        }
    }
    Ok(())
}

fn print_verified(v: &backup::Verified) {
    let rows: i64 = v.manifest.tables.values().sum();
    println!(
        "backup of {}: verified ({} files, {rows} rows in {} tables, audit chain intact to seq {})",
        v.manifest.created,
        v.manifest.files.len(),
        v.manifest.tables.len(),
        v.manifest.audit_seq
    );
}

fn print_restored(manifest: &backup::manifest::Manifest, into: &Path) {
    println!(
        "restored the backup of {} into {}: point `data_dir` there and run `nester serve`",
        manifest.created,
        into.display()
    );
}
