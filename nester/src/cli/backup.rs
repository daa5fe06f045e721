//! `nester backup`: a backup of the data directory made while the nester serves, checked end
//! to end, and restored into a new data directory. (Pushing backups off-site over SFTP is for
//! a later version; until then copy the backup directory away with your own tools.)

use std::path::PathBuf;

use crate::audit::CheckpointKey;
use crate::backup;
use crate::config::Config;
use crate::datadir::DataDir;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Back up the data directory now, into a new directory under `--to`.
    Create {
        #[arg(long)]
        to: PathBuf,
    },
    /// Check a backup: signature, every file's SHA-256, the database's integrity, its row
    /// counts and its audit chain.
    Verify { backup: PathBuf },
    /// Make a new data directory from a backup (verified first); never over an existing one.
    Restore {
        backup: PathBuf,
        #[arg(long)]
        into: PathBuf,
    },
}

pub async fn run(command: Command, config: &std::path::Path) -> anyhow::Result<()> {
    match command {
        Command::Create { to } => {
            let config = Config::load(config)?;
            let dir = DataDir::new(&config.data_dir);
            let now = crate::clock::Clock::default().now();
            let made =
                tokio::task::spawn_blocking(move || backup::create(&dir, &to, now)).await??;
            println!("backup: {}", made.display());
        }
        Command::Verify { backup: path } => {
            // Signed by this nester, when its data directory is here to say so.
            let expected = Config::load(config)
                .ok()
                .and_then(|c| CheckpointKey::load(&DataDir::new(&c.data_dir)).ok())
                .map(|k| k.public());
            let work = tempfile::tempdir()?;
            let v = backup::verify(&path, expected.as_deref(), work.path()).await?;
            let rows: i64 = v.manifest.tables.values().sum();
            println!(
                "backup of {}: verified ({} files, {rows} rows in {} tables, audit chain intact to seq {})",
                v.manifest.created,
                v.manifest.files.len(),
                v.manifest.tables.len(),
                v.manifest.audit_seq
            );
        }
        Command::Restore { backup: path, into } => {
            let manifest = backup::restore(&path, &into).await?;
            println!(
                "restored the backup of {} into {}: point `data_dir` there and run `nester serve`",
                manifest.created,
                into.display()
            );
        }
    }
    Ok(())
}
