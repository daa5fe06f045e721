//! One-shot administrative commands: `init`, `issue-cert`.

use std::path::Path;

use anyhow::{Context, bail};
use time::Duration;
use uuid::Uuid;

use crate::datadir::{DataDir, write_new};
use crate::db::Db;
use crate::pki::Ca;

/// Names every server certificate carries besides the operator's: loopback, and this host.
pub fn default_server_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
        }
    }
    names
}

/// Creates the data directory, the CA, the server certificates and the database.
pub fn init(dir: &DataDir, extra_names: &[String]) -> anyhow::Result<()> {
    if dir.is_initialised() {
        bail!(
            "{} is already initialised; refusing to replace its CA",
            dir.root().display()
        );
    }
    dir.create()?;
    let ca = Ca::create(dir)?;
    let mut names = extra_names.to_vec();
    names.extend(default_server_names());
    names.dedup();
    for listener in ["ingest", "web"] {
        let issued = ca.issue_server(&names)?;
        write_new(
            &dir.pki(&format!("{listener}.key")),
            issued.key_pem.as_bytes(),
            0o600,
        )?;
        write_new(
            &dir.pki(&format!("{listener}.pem")),
            issued.cert_pem.as_bytes(),
            0o644,
        )?;
    }
    Db::open(&dir.database())
        .with_context(|| format!("cannot create {}", dir.database().display()))?;
    Ok(())
}

/// Stopgap until enrollment: writes a probe key, certificate and the CA into `out`, laid out
/// as a harvester state directory.
pub fn issue_cert(
    dir: &DataDir,
    probe_id: Uuid,
    out: &Path,
    validity: Duration,
) -> anyhow::Result<()> {
    use harvester::state::{CA_FILE, CERT_FILE, KEY_FILE};
    let ca = Ca::load(dir)?;
    let issued = ca.issue_probe(probe_id, validity)?;
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    write_new(&out.join(KEY_FILE), issued.key_pem.as_bytes(), 0o600)?;
    write_new(&out.join(CERT_FILE), issued.cert_pem.as_bytes(), 0o644)?;
    write_new(&out.join(CA_FILE), ca.cert_pem.as_bytes(), 0o644)?;
    Ok(())
}
