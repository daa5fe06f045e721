//! `nester init`: a new data directory with its CA, a certificate for each listener, the
//! database and the first admin.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::clock::Clock;
use crate::datadir::{DataDir, Listener, write_new};
use crate::db::Role;
use crate::pki::Ca;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "NESTER_DATA_DIR")]
    data_dir: PathBuf,
    /// Extra DNS name or IP address for the server certificates (repeatable).
    #[arg(long = "name")]
    names: Vec<String>,
    /// User name of the first admin. Its password is typed twice on a terminal, read
    /// from standard input with --password-stdin, or generated and shown once.
    #[arg(long, default_value = "admin")]
    admin: String,
    #[arg(long)]
    password_stdin: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    crate::auth::credentials::check_username(&args.admin)?;
    let dir = DataDir::new(&args.data_dir);
    ensure_uninitialised(&dir)?;
    let password = super::user::new_password(args.password_stdin)?;
    init(&dir, &args.names)?;
    let db = dir.open_database()?;
    print!(
        "{}",
        super::user::add_user(&db, &args.admin, Role::Admin, password).await?
    );
    println!("initialised {}", args.data_dir.display());
    println!("CA certificate: {}", dir.ca_cert().display());
    Ok(())
}

/// Names every server certificate carries besides the operator's: loopback, and this host.
pub fn default_server_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let host = crate::config::hostname();
    if !host.is_empty() && host != "localhost" {
        names.push(host);
    }
    names
}

/// Refuses a data directory that already holds a CA.
pub fn ensure_uninitialised(dir: &DataDir) -> anyhow::Result<()> {
    if dir.is_initialised() {
        bail!(
            "{} is already initialised; refusing to replace its CA",
            dir.root().display()
        );
    }
    Ok(())
}

/// Creates the data directory, the CA, the server certificates, the SSH CAs and the database.
pub fn init(dir: &DataDir, extra_names: &[String]) -> anyhow::Result<()> {
    ensure_uninitialised(dir)?;
    dir.create()?;
    let now = Clock::default().now();
    let ca = Ca::create(dir, now)?;
    let mut names = extra_names.to_vec();
    names.extend(default_server_names());
    names.dedup();
    for listener in Listener::ALL {
        let issued = ca.issue_server(&names, crate::pki::SERVER_VALIDITY, now)?;
        // The chain includes the CA, so a new harvester can check its pin on first contact.
        let chain = format!("{}{}", issued.cert_pem, ca.cert.pem);
        write_new(
            &dir.listener_key(listener),
            issued.key_pem.as_bytes(),
            0o600,
        )?;
        write_new(&dir.listener_cert(listener), chain.as_bytes(), 0o644)?;
    }
    crate::audit::CheckpointKey::load_or_create(dir)?;
    crate::ssh_ca::Ssh::load(dir, crate::config::SshConfig::default())?;
    dir.open_database()
        .with_context(|| format!("cannot create {}", dir.database().display()))?;
    Ok(())
}
