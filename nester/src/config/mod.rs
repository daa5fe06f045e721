//! `nester.toml`. The annotated example in `deploy/nester.example.toml` is the reference;
//! `nester default-config` prints it and a test keeps it loadable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
mod alerts;
mod backup;
mod certificates;
mod error;
mod ingest;
mod log;
mod notify;
mod retention;
mod ssh;
mod threats;
mod web;

use anyhow::Context;
use serde::Deserialize;

pub use alerts::{AlertConfig, Rules, SiteRules};
pub use backup::BackupConfig;
pub use certificates::CertificatesConfig;
pub use error::ConfigError;
pub use ingest::IngestConfig;
pub use log::{Destination, LogConfig};
pub use notify::{Channel, ChannelKind, NotifyConfig, SmtpTls};
pub use retention::RetentionConfig;
pub use ssh::SshConfig;
pub use threats::ThreatConfig;
pub use web::WebConfig;

pub const EXAMPLE: &str = include_str!("../../../deploy/nester.example.toml");

/// Every section is optional: a file holding only `data_dir` runs with the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Created by `nester init`: database and PKI.
    pub data_dir: PathBuf,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Prometheus metrics on their own plain-HTTP listener; none without the section.
    pub metrics: Option<shared::metrics::MetricsConfig>,
    /// The access log.
    #[serde(default)]
    pub log: LogConfig,
    /// Threat detection and bans.
    #[serde(default)]
    pub threats: ThreatConfig,
    /// Monitoring alerts: which conditions, what thresholds.
    #[serde(default)]
    pub alerts: AlertConfig,
    /// Where alert notifications go.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The listeners' own certificates.
    #[serde(default)]
    pub certificates: CertificatesConfig,
    /// Backups pushed over SFTP on a schedule; none without the section.
    pub backup: Option<BackupConfig>,
    /// SSH certificates for support engineers.
    #[serde(default)]
    pub ssh: SshConfig,
}

/// This machine's name, as the kernel knows it (empty if unreadable).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// `listen` as others can dial it: this machine's name instead of a wildcard address.
fn reachable(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!("{}:{}", hostname(), listen.port())
    } else {
        listen.to_string()
    }
}

/// A humantime duration (`30s`, `5m`, `12h`) in the config file.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
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
                 `nester default-config > {0}` and edit it",
                path.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read config file {}", path.display()));
            }
        };
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Reads `text` and checks every section; an error names the key, and its line when
    /// the file sets it.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        if let Err(e) = config.check() {
            match e.line_in(text) {
                Some(line) => anyhow::bail!("line {line}: {e}"),
                None => return Err(e.into()),
            }
        }
        Ok(config)
    }

    /// Every section's bounds, each checked once, in its own file.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.ingest.check()?;
        self.web.check()?;
        if self.ingest.listen.port() != 0 && self.ingest.listen == self.web.listen {
            return Err(ConfigError::bound(
                "ingest.listen",
                "and `web.listen` must differ",
            ));
        }
        self.retention.check()?;
        if let Some(metrics) = &self.metrics {
            metrics
                .check()
                .map_err(|e| ConfigError::new("metrics.listen", e))?;
        }
        self.log.check()?;
        self.threats.check()?;
        self.alerts.check()?;
        self.notify.check()?;
        self.certificates.check()?;
        if let Some(backup) = &self.backup {
            backup.check()?;
        }
        self.ssh.check()
    }

    /// The address enrollment tokens send harvesters to.
    pub fn public_ingest_address(&self) -> String {
        self.public_ingest_address_bound(self.ingest.listen.port())
    }

    /// The same, once the ingest listener is bound (to `port`, when configured as port 0).
    pub fn public_ingest_address_bound(&self, port: u16) -> String {
        match &self.ingest.public_address {
            Some(addr) => addr.clone(),
            None => reachable(SocketAddr::new(self.ingest.listen.ip(), port)),
        }
    }

    /// Where the plain-HTTP listener sends browsers: `public_url`, or this machine at the
    /// web listener's (bound) port.
    pub fn public_web_url(&self, bound: SocketAddr) -> String {
        match &self.web.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!(
                "https://{}",
                reachable(SocketAddr::new(self.web.listen.ip(), bound.port()))
            ),
        }
    }

    /// Every default, for `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            ingest: IngestConfig::default(),
            web: WebConfig::default(),
            retention: RetentionConfig::default(),
            metrics: None,
            log: LogConfig::default(),
            threats: ThreatConfig::default(),
            alerts: AlertConfig::default(),
            notify: NotifyConfig::default(),
            certificates: CertificatesConfig::default(),
            backup: None,
            ssh: SshConfig::default(),
        }
    }

    /// The defaults with both listeners on loopback, ports chosen by the OS.
    pub fn loopback(data_dir: &Path) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Self::new(data_dir);
        config.ingest.listen = any;
        config.web.listen = any;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_loads() {
        let config = Config::parse(EXAMPLE).unwrap();
        assert_eq!(config.ingest.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(
            config.web.session_idle,
            std::time::Duration::from_secs(30 * 60)
        );
        assert_eq!(
            config.web.session_lifetime,
            std::time::Duration::from_secs(12 * 3600)
        );
        assert_eq!(config.web.max_body_bytes, 65536);
        assert_eq!(
            config.ssh.principals_of(crate::db::Role::Admin),
            ["support", "root"]
        );
        let err = format!(
            "{:#}",
            Config::parse(&EXAMPLE.replace("session_idle = \"30m\"", "session_idle = \"13h\""))
                .unwrap_err()
        );
        assert!(err.contains("session_idle"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse(&EXAMPLE.replace("session_idle = \"30m\"", "session_idle = \"soon\""))
                .unwrap_err()
        );
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        let err = format!(
            "{:#}",
            Config::parse(&EXAMPLE.replace("listen = \"0.0.0.0:9443\"", "listen = \"nowhere\""))
                .unwrap_err()
        );
        assert!(err.contains("line") && err.contains("listen"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse(&format!("{EXAMPLE}\nsurprise = 1\n")).unwrap_err()
        );
        assert!(err.contains("surprise"), "{err}");
        let err = format!(
            "{:#}",
            Config::load(Path::new("/nonexistent/n.toml")).unwrap_err()
        );
        assert!(err.contains("/nonexistent/n.toml"), "{err}");
    }

    #[test]
    fn a_file_with_only_the_data_dir_takes_every_default() {
        let config = Config::parse("data_dir = \"/var/lib/seahawks-nester\"\n").unwrap();
        assert_eq!(config.ingest.listen, SocketAddr::from(([0, 0, 0, 0], 9443)));
        assert_eq!(config.web.listen, SocketAddr::from(([0, 0, 0, 0], 8443)));
        let example = Config::parse(EXAMPLE).unwrap();
        assert_eq!(config.web.session_idle, example.web.session_idle);
        assert_eq!(config.ingest.max_body_bytes, example.ingest.max_body_bytes);
        assert_eq!(config.retention.every, example.retention.every);
        assert!(config.backup.is_none() && config.metrics.is_none());
        let loopback = Config::loopback(Path::new("/x"));
        assert_eq!(loopback.web.session_lifetime, config.web.session_lifetime);
        assert!(loopback.web.listen.ip().is_loopback());
    }

    /// One refused value per section: the error names its key and the line that sets it.
    #[test]
    fn every_section_names_the_key_and_line_it_refuses() {
        let backup = "[backup]\nserver = \"b.example.net\"\nuser = \"n\"\n\
                      host_key = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n";
        for (section, key) in [
            ("[ingest]\nmax_body_bytes = 10\n", "ingest.max_body_bytes"),
            (
                "[ingest]\nprobe_certificate_days = 400\n",
                "ingest.probe_certificate_days",
            ),
            ("[web]\nsession_idle = \"10s\"\n", "web.session_idle"),
            ("[web]\npublic_url = \"http://x\"\n", "web.public_url"),
            ("[retention]\nevery = \"5s\"\n", "retention.every"),
            ("[log]\naccess_max_bytes = 10\n", "log.access_max_bytes"),
            ("[threats]\nipv6_prefix = 200\n", "threats.ipv6_prefix"),
            ("[threats]\nban = \"30d\"\n", "threats.ban"),
            ("[alerts]\nevery = \"2h\"\n", "alerts.every"),
            (
                "[certificates]\ncheck_every = \"1s\"\n",
                "certificates.check_every",
            ),
            (
                "[certificates]\nserver_days = 365\n",
                "certificates.server_days",
            ),
            ("[ssh]\nvalidity = \"30s\"\n", "ssh.validity"),
            ("[metrics]\nlisten = \"0.0.0.0:9464\"\n", "metrics.listen"),
        ]
        .into_iter()
        .chain([(&*format!("{backup}every = \"10s\"\n"), "backup.every")])
        {
            let text = format!("data_dir = \"/x\"\n\n{section}");
            let err = Config::parse(&text).unwrap_err().to_string();
            let leaf = key.rsplit('.').next().unwrap();
            assert!(err.contains(leaf), "{key}: {err}");
            let line = text.lines().count();
            assert!(err.starts_with(&format!("line {line}: ")), "{key}: {err}");
            let checked = toml::from_str::<Config>(&text)
                .unwrap()
                .check()
                .unwrap_err();
            assert_eq!(checked.key, key);
        }
        let err = Config::parse("data_dir = \"/x\"\n[notify.channels.noc]\nkind = \"slack\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notify.channels.noc") && err.contains("url"),
            "{err}"
        );
    }
}
