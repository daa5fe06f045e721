//! `nester certs status`: each certificate the nester serves or signs with, its expiry, and
//! when it renews (the listeners' own renew by themselves at two thirds of their life; an
//! operator's web certificate is reloaded when its files change; the CA is replaced by
//! rotation).

use std::path::Path;

use anyhow::Context;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::clock::{human, rfc3339_ms, to_ms};
use crate::config::Config;
use crate::datadir::{DataDir, Listener};
use crate::pki::renew::Life;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Each certificate's fingerprint, expiry and renewal.
    Status,
}

pub fn run(command: Command, config: &Config, now: time::OffsetDateTime) -> anyhow::Result<()> {
    let Command::Status = command;
    let dir = DataDir::new(&config.data_dir);
    let web = crate::net::tls::web_files(&dir, &config.web)?.0;
    let operator = config.web.cert.is_some();
    let rows = [
        ("ca", dir.ca_cert(), "replaced by rotation"),
        (
            "ingest",
            dir.listener_cert(Listener::Ingest),
            "renews itself",
        ),
        (
            "web",
            web,
            if operator {
                "operator's file, reloaded when it changes"
            } else {
                "renews itself"
            },
        ),
    ];
    let now = to_ms(now);
    println!(
        "{:<8} {:<16} {:<22} {:<16} renewal",
        "cert", "sha256", "not after", "left"
    );
    for (name, path, how) in rows {
        let (fingerprint, life) = read(&path)?;
        let left = if life.end <= now {
            "EXPIRED".to_string()
        } else {
            days(life.end - now)
        };
        let renewal = if how == "renews itself" {
            format!("{how}, at {}", rfc3339_ms(life.renew_at()))
        } else {
            how.to_string()
        };
        let late = if life.late(now) {
            "  (under a quarter of its life left!)"
        } else {
            ""
        };
        println!(
            "{name:<8} {:<16} {:<22} {left:<16} {renewal}{late}",
            &fingerprint[..16],
            rfc3339_ms(life.end),
        );
    }
    Ok(())
}

/// `396d 7h`, or the exact time under a day.
fn days(ms: i64) -> String {
    let hours = ms / 3_600_000;
    if hours < 24 {
        return human(ms);
    }
    format!("{}d {}h", hours / 24, hours % 24)
}

/// The first certificate of a PEM file: its fingerprint and life.
fn read(path: &Path) -> anyhow::Result<(String, Life)> {
    let der = CertificateDer::from_pem_file(path)
        .with_context(|| format!("cannot read the certificate {}", path.display()))?;
    let life =
        Life::of(&der).with_context(|| format!("{} is not a valid certificate", path.display()))?;
    Ok((shared::identity::fingerprint(&der), life))
}
