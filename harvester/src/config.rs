//! `harvester.toml`. The annotated example in `deploy/harvester.example.toml` is the
//! reference; `harvester default-config` prints it and a test keeps it loadable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Deserializer};

use crate::scan::{PortSpec, ScanOptions};
use crate::spool::WhenFull;

pub const EXAMPLE: &str = include_str!("../../deploy/harvester.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity, counters and the spool.
    pub state_dir: PathBuf,
    /// Time between scan cycles, e.g. `5m` (a random 0-10 % is added to spread sites out).
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    #[serde(default)]
    pub nester: NesterConfig,
    pub scan: ScanConfig,
    #[serde(default)]
    pub spool: SpoolConfig,
    /// WAN latency targets; none by default.
    #[serde(default)]
    pub wan: crate::wan::WanOptions,
    /// Prometheus metrics (`harvester run` only); none without the section.
    #[serde(default)]
    pub metrics: Option<shared::metrics::MetricsConfig>,
    /// The box's sshd trust, kept up to date from the nester; none without the section.
    #[serde(default)]
    pub ssh: Option<SshTrustConfig>,
}

/// `[ssh]`: where the box's sshd reads the user CAs and the revoked keys (`sshd_config`'s
/// `TrustedUserCAKeys` and `RevokedKeys`); the harvester rewrites both atomically each
/// cycle the nester's copy changes. With `host_key` and `host_certificate`, it also has the
/// box's host key certified by the nester and keeps the certificate where sshd's
/// `HostCertificate` reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshTrustConfig {
    pub trusted_user_ca_keys: PathBuf,
    pub revoked_keys: PathBuf,
    /// The box's host public key, e.g. `/etc/ssh/ssh_host_ed25519_key.pub`.
    #[serde(default)]
    pub host_key: Option<PathBuf>,
    /// Where its certificate goes, e.g. `/etc/ssh/seahawks/ssh_host_ed25519_key-cert.pub`.
    #[serde(default)]
    pub host_certificate: Option<PathBuf>,
    /// Names the box answers to besides its host name (e.g. its DNS name at the site).
    #[serde(default)]
    pub host_names: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NesterConfig {
    /// The nester's ingest listener, `host:port`; default: the address from the enrollment token.
    pub ingest: Option<String>,
    /// Name expected in the nester's certificate; default: the host part of the address.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    pub targets: Vec<String>,
    /// The networks this harvester may scan, and nothing else: every target, including the
    /// addresses a host name resolves to, must lie inside.
    pub scope: Vec<ipnet::IpNet>,
    /// Port specification, e.g. `22,80,443,8000-8100`.
    pub ports: String,
    #[serde(flatten)]
    pub options: ScanOptions,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Most bytes of unsent reports kept on disk.
    pub max_bytes: u64,
    /// What happens when a new report would not fit.
    pub when_full: WhenFull,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            when_full: WhenFull::Pause,
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}

/// A humantime duration (`30s`, `5m`, `12h`) in a config file.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e} (write e.g. `5m` or `30s`)")))
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "no config file at {0}: pass `--config FILE`, or write this one with \
                 `harvester default-config > {0}` and edit it",
                path.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read config file {}", path.display()));
            }
        };
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(metrics) = &self.metrics {
            metrics.check().map_err(anyhow::Error::msg)?;
        }
        anyhow::ensure!(
            self.interval >= Duration::from_millis(100),
            "`interval` must be at least 100ms"
        );
        anyhow::ensure!(
            !self.scan.targets.is_empty(),
            "`scan.targets` must name at least one target"
        );
        anyhow::ensure!(
            self.scan.options.concurrency >= 1,
            "`scan.concurrency` must be at least 1"
        );
        anyhow::ensure!(
            self.spool.max_bytes >= 64 * 1024,
            "`spool.max_bytes` must be at least 65536"
        );
        if let Some(ssh) = &self.ssh {
            anyhow::ensure!(
                ssh.host_key.is_some() == ssh.host_certificate.is_some(),
                "`ssh.host_key` and `ssh.host_certificate` go together: set both or neither"
            );
        }
        self.ports()?;
        Ok(())
    }

    pub fn ports(&self) -> Result<PortSpec, crate::scan::ports::PortSpecError> {
        self.scan.ports.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_loads() {
        let config = Config::parse(EXAMPLE).unwrap();
        assert_eq!(config.interval, Duration::from_secs(300));
        assert_eq!(config.spool.when_full, WhenFull::Pause);
        assert!(config.ports().unwrap().ports().contains(&22));
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        let typo = EXAMPLE.replace("interval =", "intervall =");
        let err = format!("{:#}", Config::parse(&typo).unwrap_err());
        assert!(err.contains("intervall") && err.contains("line"), "{err}");
        let bad_ports = EXAMPLE.replace("ports = \"", "ports = \"0,");
        let err = format!("{:#}", Config::parse(&bad_ports).unwrap_err());
        assert!(err.contains("port 0"), "{err}");
        let bad_interval = EXAMPLE.replace("interval = \"5m\"", "interval = \"soon\"");
        let err = format!("{:#}", Config::parse(&bad_interval).unwrap_err());
        assert!(err.contains("soon"), "{err}");
        let bad_policy = EXAMPLE.replace("when_full = \"pause\"", "when_full = \"panic\"");
        let err = format!("{:#}", Config::parse(&bad_policy).unwrap_err());
        assert!(
            err.contains("panic") && err.contains("drop-oldest"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            Config::load(Path::new("/nonexistent/h.toml")).unwrap_err()
        );
        assert!(err.contains("/nonexistent/h.toml"), "{err}");
    }

    #[test]
    fn the_ssh_section_as_shipped_loads_and_a_host_key_needs_its_certificate() {
        let uncommented = EXAMPLE
            .replace("# [ssh]", "[ssh]")
            .replace("# trusted_user_ca_keys", "trusted_user_ca_keys")
            .replace("# revoked_keys", "revoked_keys")
            .replace("# host_key", "host_key")
            .replace("# host_certificate", "host_certificate")
            .replace("# host_names", "host_names");
        let ssh = Config::parse(&uncommented).unwrap().ssh.unwrap();
        assert!(ssh.host_key.is_some() && ssh.host_certificate.is_some());
        let half = uncommented.replace("host_certificate =", "# host_certificate =");
        let err = format!("{:#}", Config::parse(&half).unwrap_err());
        assert!(err.contains("go together"), "{err}");
    }
}
