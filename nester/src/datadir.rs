//! The nester's data directory: the only place that names a file in it.
//!
//! ```text
//! DATA_DIR/            0700
//!   nester.db          SQLite database (WAL)
//!   pki/ca.pem         CA certificate (public: served at /ca.pem)
//!   pki/ca.key         CA private key, 0600
//!   pki/ingest.pem|key ingest listener certificate and key
//!   pki/web.pem|key    web listener certificate and key
//!   pki/previous.pem|key  during a CA rotation: the CA being retired
//!   pki/cross.pem      during a CA rotation: the new CA's certificate signed by the old one
//!   pki/rotation.json  during a CA rotation: its fingerprints and when the old CA retires
//!   pki/retired.pem    every retired CA certificate (reports they signed still verify)
//!   pki/backup_ed25519 the SSH key backups are pushed with, 0600
//!   pki/ssh_user_ca, pki/ssh_host_ca   the SSH CAs (the newest during a rotation), 0600
//!   pki/ssh_*_ca.previous, .rotation.json   during an SSH CA rotation: the CA being
//!                      retired, and when it switches and retires (ssh_ca/rotation.rs)
//! ```

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::db::Db;

/// The TLS listeners that hold a certificate of their own from the nester CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Ingest,
    Web,
}

impl Listener {
    pub const ALL: [Self; 2] = [Self::Ingest, Self::Web];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Web => "web",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("nester.db")
    }
    /// Opens (creating and migrating when needed) the database.
    pub fn open_database(&self) -> anyhow::Result<Db> {
        let path = self.database();
        Db::open(&path).with_context(|| format!("cannot open the database {}", path.display()))
    }

    fn pki(&self, file: &str) -> PathBuf {
        self.pki_dir().join(file)
    }
    /// Every key and certificate (0700), as a backup copies it.
    pub fn pki_dir(&self) -> PathBuf {
        self.root.join("pki")
    }
    /// The CA certificate (public).
    pub fn ca_cert(&self) -> PathBuf {
        self.pki("ca.pem")
    }
    /// The CA private key (0600).
    pub fn ca_key(&self) -> PathBuf {
        self.pki("ca.key")
    }
    /// The CA being retired, during a rotation.
    pub fn previous_ca_cert(&self) -> PathBuf {
        self.pki("previous.pem")
    }
    pub fn previous_ca_key(&self) -> PathBuf {
        self.pki("previous.key")
    }
    /// The new CA certificate signed by the previous CA, during a rotation.
    pub fn cross_cert(&self) -> PathBuf {
        self.pki("cross.pem")
    }
    /// The SSH certificate authority for user certificates (OpenSSH format, 0600).
    pub fn ssh_user_ca(&self) -> PathBuf {
        self.pki("ssh_user_ca")
    }
    /// The SSH certificate authority for host certificates (OpenSSH format, 0600).
    pub fn ssh_host_ca(&self) -> PathBuf {
        self.pki("ssh_host_ca")
    }
    /// The nester's SSH key for pushing backups (OpenSSH format, 0600).
    pub fn backup_key(&self) -> PathBuf {
        self.pki("backup_ed25519")
    }
    /// During a rotation of the backup key: the new key, until it logs in.
    pub fn backup_key_next(&self) -> PathBuf {
        self.pki("backup_ed25519.next")
    }
    /// During a rotation of the backup key: the old key, until its line is off the server.
    pub fn backup_key_old(&self) -> PathBuf {
        self.pki("backup_ed25519.old")
    }
    /// The state of a rotation in progress (JSON).
    pub fn rotation(&self) -> PathBuf {
        self.pki("rotation.json")
    }
    /// Every retired CA certificate, PEM, one after the other.
    pub fn retired_cas(&self) -> PathBuf {
        self.pki("retired.pem")
    }

    /// A listener's certificate chain (its certificate, then the CA).
    pub fn listener_cert(&self, listener: Listener) -> PathBuf {
        self.pki(&format!("{}.pem", listener.name()))
    }
    /// A listener's private key (0600).
    pub fn listener_key(&self, listener: Listener) -> PathBuf {
        self.pki(&format!("{}.key", listener.name()))
    }

    /// The key that signs the audit log's checkpoints (Ed25519, PKCS#8, 0600).
    pub fn audit_key(&self) -> PathBuf {
        self.pki("audit.key")
    }
    /// The signed checkpoints of the audit log, one JSON object per line, appended.
    pub fn audit_checkpoints(&self) -> PathBuf {
        self.root.join("audit-checkpoints.jsonl")
    }

    /// Where the access log is written unless `[log] access_dir` says otherwise.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// This directory, when `nester init` made it.
    pub fn initialised(self) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.is_initialised(),
            "{} is not a nester data directory; create it with `nester init --data-dir {}`",
            self.root.display(),
            self.root.display()
        );
        Ok(self)
    }

    pub fn is_initialised(&self) -> bool {
        self.ca_cert().exists()
    }

    /// Creates the directory tree, 0700, refusing a directory others can read.
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [self.root.clone(), self.root.join("pki")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mode = fs::metadata(&dir)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{} is accessible by other users (mode {mode:o}); use a private directory",
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

/// Writes a new file that must not exist yet, with `mode`.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}
