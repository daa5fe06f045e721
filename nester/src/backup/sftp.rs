//! Backups on the SFTP server: the connection (the host key checked against the pin before
//! anything is sent, the nester's own key to log in), and the few operations backups need.
//!
//! A backup is a directory. It is uploaded as `NAME.partial` (each file written, synced with
//! `fsync@openssh.com` where the server has it, and its size checked), then renamed to
//! `NAME`: a cut upload is never listed, never verified, never restored; the next upload
//! removes it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::BackupConfig;
use crate::ssh::host_key::HostKeyPin;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const PARTIAL: &str = ".partial";
/// What the names of backups start with (see `backup::create`).
pub const PREFIX: &str = "seahawks-backup-";

/// A backup on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBackup {
    pub name: String,
    pub bytes: u64,
}

struct Pinned {
    pin: HostKeyPin,
    host: String,
    /// Why the host key was refused, for the error the caller sees.
    refusal: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        match self.pin.check(presented, &self.host, now) {
            Ok(()) => Ok(true),
            Err(reason) => {
                if let Ok(mut slot) = self.refusal.lock() {
                    *slot = Some(reason);
                }
                Ok(false)
            }
        }
    }
}

pub struct Remote {
    sftp: SftpSession,
    _session: client::Handle<Pinned>,
    dir: String,
}

impl Remote {
    /// Connects, checks the host key, logs in with `key`, and makes sure the backup
    /// directory exists.
    pub async fn connect(config: &BackupConfig, key: &PrivateKey) -> anyhow::Result<Self> {
        let (host, port) = config.address();
        let (keys, certificates) = config.host_key.preferred();
        let ssh = client::Config {
            preferred: russh::Preferred {
                key: keys.into(),
                host_key_certificates: certificates.into(),
                ..russh::Preferred::DEFAULT
            },
            inactivity_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let refusal = Arc::new(Mutex::new(None));
        let handler = Pinned {
            pin: config.host_key.clone(),
            host: host.clone(),
            refusal: refusal.clone(),
        };
        let server = &config.server;
        let connecting = client::connect(Arc::new(ssh), (host.as_str(), port), handler);
        let mut session = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Err(_) => bail!("the backup server {server} did not answer within {CONNECT_TIMEOUT:?}"),
            Ok(Ok(session)) => session,
            Ok(Err(e)) => {
                if let Some(reason) = refusal.lock().ok().and_then(|mut r| r.take()) {
                    bail!("refused the backup server {server}: {reason}");
                }
                bail!("cannot reach the backup server {server}: {e}");
            }
        };
        let auth = session
            .authenticate_publickey(
                config.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
            )
            .await
            .with_context(|| format!("while logging in to the backup server {server}"))?;
        if !auth.success() {
            bail!(
                "the backup server {server} refused the nester's backup key for user `{}`: add \
                 the line `nester backup key` prints to that account's authorized_keys",
                config.user
            );
        }
        let channel = session.channel_open_session().await?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .context("the backup server offers no SFTP")?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .context("the backup server's SFTP does not answer")?;
        let remote = Self {
            sftp,
            _session: session,
            dir: config.dir.trim_end_matches('/').to_string(),
        };
        remote.make_dir(&remote.dir.clone()).await?;
        Ok(remote)
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    async fn make_dir(&self, path: &str) -> anyhow::Result<()> {
        let mut at = String::new();
        for part in path.split('/') {
            if !at.is_empty() || path.starts_with('/') {
                at.push('/');
            }
            at.push_str(part);
            if part.is_empty() || part == "." {
                continue;
            }
            if !self.sftp.try_exists(at.clone()).await.unwrap_or(false) {
                self.sftp
                    .create_dir(at.clone())
                    .await
                    .with_context(|| format!("cannot create {at} on the backup server"))?;
            }
        }
        Ok(())
    }

    /// Uploads the backup directory `local` as `name`, under a temporary name first.
    pub async fn upload(&self, local: &Path, name: &str) -> anyhow::Result<()> {
        let partial = self.path(&format!("{name}{PARTIAL}"));
        if self.sftp.try_exists(partial.clone()).await.unwrap_or(false) {
            self.remove_tree(&partial).await?;
        }
        self.sftp
            .create_dir(partial.clone())
            .await
            .with_context(|| format!("cannot create {partial} on the backup server"))?;
        for relative in super::listing(local)?
            .into_iter()
            .chain([super::manifest::FILE.to_string()])
        {
            if let Some((sub, _)) = relative.rsplit_once('/') {
                self.make_dir(&format!("{partial}/{sub}")).await?;
            }
            self.put(&local.join(&relative), &format!("{partial}/{relative}"))
                .await?;
        }
        let target = self.path(name);
        self.sftp
            .rename(partial, target.clone())
            .await
            .with_context(|| format!("cannot rename the upload to {target}"))?;
        Ok(())
    }

    async fn put(&self, local: &Path, remote: &str) -> anyhow::Result<()> {
        let mut input = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("cannot read {}", local.display()))?;
        let size = input.metadata().await?.len();
        let mut output = self
            .sftp
            .create(remote.to_string())
            .await
            .with_context(|| format!("cannot create {remote} on the backup server"))?;
        let mut buffer = vec![0; 256 * 1024];
        loop {
            let n = input.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            output.write_all(&buffer[..n]).await.with_context(|| {
                format!("cannot write {remote} on the backup server (is its disk full?)")
            })?;
        }
        output.flush().await.with_context(|| {
            format!("cannot write {remote} on the backup server (is its disk full?)")
        })?;
        // Not every server has fsync@openssh.com; the size check below still holds.
        let _ = output.sync_all().await;
        output.shutdown().await.with_context(|| {
            format!("cannot finish {remote} on the backup server (is its disk full?)")
        })?;
        let written = self.sftp.metadata(remote.to_string()).await?.len();
        if written != size {
            bail!(
                "{remote} on the backup server holds {written} bytes of {size} (is its disk full?)"
            );
        }
        Ok(())
    }

    /// The complete backups on the server, oldest first (names sort by time).
    pub async fn list(&self) -> anyhow::Result<Vec<RemoteBackup>> {
        let mut backups = Vec::new();
        for entry in self.sftp.read_dir(self.dir.clone()).await? {
            let name = entry.file_name();
            if !entry.file_type().is_dir() || !name.starts_with(PREFIX) || name.ends_with(PARTIAL) {
                continue;
            }
            let mut bytes = 0;
            for (_, size) in self.files(&self.path(&name)).await? {
                bytes += size;
            }
            backups.push(RemoteBackup { name, bytes });
        }
        backups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(backups)
    }

    /// Every file under `root`, with its path relative to it and its size.
    async fn files(&self, root: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let mut files = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(relative) = dirs.pop() {
            let at = if relative.is_empty() {
                root.to_string()
            } else {
                format!("{root}/{relative}")
            };
            for entry in self.sftp.read_dir(at).await? {
                let name = entry.file_name();
                let path = if relative.is_empty() {
                    name
                } else {
                    format!("{relative}/{name}")
                };
                if entry.file_type().is_dir() {
                    dirs.push(path);
                } else {
                    files.push((path, entry.metadata().len()));
                }
            }
        }
        Ok(files)
    }

    /// Downloads backup `name` into a new directory under `into`; returns its path.
    pub async fn download(&self, name: &str, into: &Path) -> anyhow::Result<PathBuf> {
        if name.contains('/') || !name.starts_with(PREFIX) || name.ends_with(PARTIAL) {
            bail!("`{name}` is not the name of a backup (see `nester backup list`)");
        }
        let root = self.path(name);
        if !self.sftp.try_exists(root.clone()).await.unwrap_or(false) {
            bail!("there is no backup `{name}` on the backup server (see `nester backup list`)");
        }
        let out = into.join(name);
        for (relative, _) in self.files(&root).await? {
            if relative.split('/').any(|p| p == ".." || p.is_empty()) {
                bail!("the backup server lists a file named `{relative}` in {name}");
            }
            let local = out.join(&relative);
            if let Some(parent) = local.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let mut input = self.sftp.open(format!("{root}/{relative}")).await?;
            let mut output = tokio::fs::File::create(&local)
                .await
                .with_context(|| format!("cannot write {} (is the disk full?)", local.display()))?;
            tokio::io::copy(&mut input, &mut output).await?;
            output.sync_all().await?;
        }
        Ok(out)
    }

    /// A small text file on the server (the account's `authorized_keys`); empty when absent.
    pub async fn read_text(&self, path: &str) -> anyhow::Result<String> {
        if !self
            .sftp
            .try_exists(path.to_string())
            .await
            .unwrap_or(false)
        {
            return Ok(String::new());
        }
        let bytes = self
            .sftp
            .read(path.to_string())
            .await
            .with_context(|| format!("cannot read {path} on the backup server"))?;
        String::from_utf8(bytes).with_context(|| format!("{path} on the backup server is not text"))
    }

    /// Replaces the text of `path` in place: written from the start, then cut to its length.
    /// SFTP cannot rename over a file, and truncating first would leave it empty if the
    /// connection broke in between; this way every line both versions share stays whole.
    pub async fn rewrite(&self, path: &str, text: &str) -> anyhow::Result<()> {
        use russh_sftp::protocol::OpenFlags;
        let mut file = self
            .sftp
            .open_with_flags(path.to_string(), OpenFlags::WRITE | OpenFlags::CREATE)
            .await
            .with_context(|| format!("cannot open {path} on the backup server"))?;
        file.write_all(text.as_bytes()).await?;
        file.flush().await?;
        let size = russh_sftp::client::fs::Metadata {
            size: Some(text.len() as u64),
            ..Default::default()
        };
        file.set_metadata(size)
            .await
            .with_context(|| format!("cannot cut {path} on the backup server to its length"))?;
        let _ = file.sync_all().await;
        file.shutdown().await?;
        Ok(())
    }

    /// Removes backup `name` from the server.
    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        self.remove_tree(&self.path(name)).await
    }

    /// Removes what uploads cut short left (`NAME.partial`); call it with no upload under
    /// way. Returns their names.
    pub async fn remove_partials(&self) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for entry in self.sftp.read_dir(self.dir.clone()).await? {
            let name = entry.file_name();
            if entry.file_type().is_dir() && name.starts_with(PREFIX) && name.ends_with(PARTIAL) {
                self.remove_tree(&self.path(&name)).await?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    async fn remove_tree(&self, root: &str) -> anyhow::Result<()> {
        let mut files = self.files(root).await?;
        // Deepest first, so directories are empty when they go.
        files.sort_by_key(|(path, _)| std::cmp::Reverse(path.matches('/').count()));
        let mut dirs = std::collections::BTreeSet::new();
        for (relative, _) in files {
            self.sftp.remove_file(format!("{root}/{relative}")).await?;
            if let Some((dir, _)) = relative.rsplit_once('/') {
                dirs.insert(dir.to_string());
            }
        }
        for dir in dirs.iter().rev() {
            self.sftp.remove_dir(format!("{root}/{dir}")).await?;
        }
        self.sftp
            .remove_dir(root.to_string())
            .await
            .with_context(|| format!("cannot remove {root} on the backup server"))?;
        Ok(())
    }
}
