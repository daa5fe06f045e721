//! The box's SSH host certificate, kept by the harvester (`[ssh] host_key` and
//! `host_certificate`): each cycle it sends the nester the box's host public key, its names
//! (the host name and `host_names`) and its address toward the nester, and installs the
//! certificate it gets back where sshd's `HostCertificate` reads it, once `ssh-keygen`
//! reads it and only when it changed (the nester hands the same one back until it is two
//! thirds through its life). sshd reads host certificates when it starts or reloads:
//! `deploy/seahawks-ssh-host-certificate.path` reloads it when the file changes.

use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use shared::protocol::{HostCertificateRequest, HostCertificateResponse};

use crate::config::SshTrustConfig;
use crate::ssh_trust::{replace, staging, write_synced};

/// The box's host name, as the kernel has it.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The box's own address on the route to `nester` (`host:port`): what a UDP socket connected
/// there is bound to. Nothing is sent.
fn address_toward(nester: &str) -> Option<IpAddr> {
    let target = nester.to_socket_addrs().ok()?.next()?;
    let socket = UdpSocket::bind(if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// What to ask the nester for, or `None` without `host_key` in the config. Blocking (reads
/// files, resolves the nester's name).
pub fn request(
    config: &SshTrustConfig,
    nester: &str,
    trust_version: Option<u64>,
) -> anyhow::Result<Option<HostCertificateRequest>> {
    let Some(path) = &config.host_key else {
        return Ok(None);
    };
    let host_key = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the host key {}", path.display()))?;
    let names = host_name()
        .into_iter()
        .chain(config.host_names.iter().cloned())
        .collect();
    Ok(Some(HostCertificateRequest {
        host_key: host_key.trim().to_string(),
        names,
        addresses: address_toward(nester).into_iter().collect(),
        trust_version,
    }))
}

/// Whether `ssh-keygen` reads the certificate at `path`.
fn certificate_reads(path: &Path) -> anyhow::Result<()> {
    let output = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(path)
        .output()
        .context(
            "cannot run ssh-keygen to check the host certificate (is openssh-client installed?)",
        )?;
    if !output.status.success() {
        bail!(
            "ssh-keygen cannot read the nester's host certificate: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Installs the certificate where the config says; `false` when it was there already. On any
/// error the installed file is left as it was.
pub fn install(
    config: &SshTrustConfig,
    response: &HostCertificateResponse,
) -> anyhow::Result<bool> {
    let Some(path) = &config.host_certificate else {
        bail!("no `ssh.host_certificate` in the config");
    };
    let text = format!("{}\n", response.certificate.trim());
    if !response
        .certificate
        .trim()
        .contains("-cert-v01@openssh.com ")
    {
        bail!("the nester's answer is not an OpenSSH certificate");
    }
    if std::fs::read(path).is_ok_and(|b| b == text.as_bytes()) {
        return Ok(false);
    }
    let staged = staging(path);
    if let Err(e) = write_synced(&staged, text.as_bytes()).and_then(|()| certificate_reads(&staged))
    {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    replace(&staged, path)?;
    Ok(true)
}
