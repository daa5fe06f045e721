//! The access log's writer: lines from the channel to standard output or to
//! `access.log`, rotated by size and age (`access.log.1` is the newest old one; beyond
//! `keep`, the oldest are deleted). Writes are batched: whatever is queued goes out in one
//! write, then it waits for more.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::sync::mpsc;

use super::Record;
use crate::config::{Destination, LogConfig};

/// Writes every line received until every sender is gone, or, once `stop` completes, until
/// the listeners had their time to drain ([`DRAIN`]). `default_dir` is used when the config
/// names none.
pub async fn run(
    mut rx: mpsc::Receiver<Record>,
    config: LogConfig,
    default_dir: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) {
    let dir = config.access_dir.clone().unwrap_or(default_dir);
    let mut sink = match config.access {
        Destination::Off => return,
        Destination::Stdout => Sink::Stdout,
        Destination::File => match File::open(&dir) {
            Ok(f) => Sink::File(f),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), dir = %dir.display(), "cannot open the access log; access lines go to standard output");
                Sink::Stdout
            }
        },
    };
    let mut batch = Vec::new();
    tokio::pin!(stop);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            None => tokio::select! {
                next = rx.recv() => next,
                () = &mut stop => {
                    deadline = Some(tokio::time::Instant::now() + DRAIN);
                    continue;
                }
            },
            Some(at) => tokio::time::timeout_at(at, rx.recv()).await.ok().flatten(),
        };
        let Some(first) = next else { break };
        batch.clear();
        line(&mut batch, &first);
        while let Ok(next) = rx.try_recv() {
            line(&mut batch, &next);
            if batch.len() > 256 * 1024 {
                break;
            }
        }
        let written = match &mut sink {
            Sink::Stdout => std::io::stdout().lock().write_all(&batch),
            Sink::File(f) => f.write(&batch, &config),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write the access log");
        }
    }
}

/// How long lines are still written after the stop: a little more than the listeners'
/// own drain.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(6);

fn line(out: &mut Vec<u8>, record: &Record) {
    if serde_json::to_writer(&mut *out, record).is_ok() {
        out.push(b'\n');
    }
}

enum Sink {
    Stdout,
    File(File),
}

struct File {
    dir: PathBuf,
    file: std::fs::File,
    bytes: u64,
    opened: Instant,
}

impl File {
    fn path(dir: &Path) -> PathBuf {
        dir.join("access.log")
    }

    fn open(dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(Self::path(dir))?;
        let bytes = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            bytes,
            opened: Instant::now(),
        })
    }

    fn write(&mut self, batch: &[u8], config: &LogConfig) -> std::io::Result<()> {
        if self.bytes > 0
            && (self.bytes + batch.len() as u64 > config.access_max_bytes
                || self.opened.elapsed() >= config.access_max_age)
        {
            self.rotate(config.access_keep)?;
        }
        self.file.write_all(batch)?;
        self.bytes += batch.len() as u64;
        Ok(())
    }

    /// `access.log` becomes `access.log.1`, `.1` becomes `.2`..., beyond `keep` deleted.
    fn rotate(&mut self, keep: usize) -> std::io::Result<()> {
        let numbered = |n: usize| self.dir.join(format!("access.log.{n}"));
        let _ = std::fs::remove_file(numbered(keep.max(1)));
        for n in (1..keep.max(1)).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::rename(Self::path(&self.dir), numbered(1))?;
        *self = Self::open(&self.dir).map_err(std::io::Error::other)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rotation_keeps_the_newest_files() {
        let temp = tempfile::tempdir().unwrap();
        let config = LogConfig {
            access_max_bytes: 100,
            access_keep: 3,
            ..LogConfig::default()
        };
        let mut file = File::open(temp.path()).unwrap();
        for i in 0..10 {
            file.write(format!("{i:0>60}\n").as_bytes(), &config)
                .unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["access.log", "access.log.1", "access.log.2", "access.log.3"]
        );
        let newest = std::fs::read_to_string(temp.path().join("access.log")).unwrap();
        assert!(newest.starts_with(&format!("{:0>60}", 9)), "{newest}");
        let oldest = std::fs::read_to_string(temp.path().join("access.log.3")).unwrap();
        assert!(oldest.starts_with(&format!("{:0>60}", 6)), "{oldest}");
        // Rotation by age.
        let by_age = LogConfig {
            access_max_age: Duration::ZERO,
            ..config
        };
        file.write(b"x\n", &by_age).unwrap();
        assert_eq!(
            std::fs::read_to_string(temp.path().join("access.log")).unwrap(),
            "x\n"
        );
    }
}
