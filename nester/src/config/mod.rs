//! `nester.toml`. The annotated example in `deploy/nester.example.toml` is the reference;
//! `nester default-config` prints it and a test keeps it loadable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod alerts;
mod backup;
mod certificates;
mod notify;
mod ssh;

use anyhow::Context;
use ipnet::IpNet;
use serde::Deserialize;

pub use alerts::{AlertConfig, Rules, SiteRules};
pub use backup::BackupConfig;
pub use certificates::CertificatesConfig;
pub use notify::{Channel, ChannelKind, NotifyConfig, SmtpTls};
pub use ssh::SshConfig;

pub const EXAMPLE: &str = include_str!("../../../deploy/nester.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Created by `nester init`: database and PKI.
    pub data_dir: PathBuf,
    pub ingest: IngestConfig,
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

/// `[log]` in `nester.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `file` (rotated, in `access_dir`), `stdout` (one JSON line each, for journald), `off`.
    pub access: Destination,
    /// Where `file` writes `access.log` and its rotated copies; default `DATA_DIR/logs`.
    pub access_dir: Option<std::path::PathBuf>,
    /// Rotate when the file reaches this size...
    pub access_max_bytes: u64,
    /// ...or this age (humantime).
    #[serde(deserialize_with = "duration")]
    pub access_max_age: Duration,
    /// Rotated files kept (the oldest are deleted).
    pub access_keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            access: Destination::File,
            access_dir: None,
            access_max_bytes: 64 * 1024 * 1024,
            access_max_age: Duration::from_secs(86_400),
            access_keep: 14,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    File,
    Stdout,
    Off,
}

/// `[threats]` in `nester.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreatConfig {
    /// Networks never banned, automatically or by hand: loopback and your own.
    pub allow: Vec<IpNet>,
    /// Reverse proxies in front of the web listener whose `X-Forwarded-For` is believed (from
    /// anyone else it is ignored). Never banned themselves: their clients are.
    pub trusted_proxies: Vec<IpNet>,
    /// IPv6 clients are banned by network of this length (a host owns a /64).
    pub ipv6_prefix: u8,
    /// The window each rule counts over.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    /// First ban; each repeat offence doubles it, up to `ban_max`.
    #[serde(deserialize_with = "duration")]
    pub ban: Duration,
    #[serde(deserialize_with = "duration")]
    pub ban_max: Duration,
    /// Thresholds within the window, per client prefix.
    pub sign_in_failures: u32,
    pub tls_failures: u32,
    pub not_found: u32,
    pub unauthorized: u32,
    /// Uses of a revoked probe, bad report signatures or bad enrollment tokens (each its own
    /// rule; every one also raises an alert).
    pub ingest_refusals: u32,
    /// A banned prefix refused this many times within a second is dropped by the kernel (a
    /// socket filter on the listeners) until its ban ends; 0 keeps every refusal in the accept
    /// loop (and in the access log).
    pub kernel_after: u32,
    /// A security alert nothing raised again for this long is resolved.
    #[serde(deserialize_with = "duration")]
    pub alert_quiet: Duration,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                "127.0.0.0/8"
                    .parse()
                    .unwrap_or(IpNet::V4(Default::default())),
                "::1/128".parse().unwrap_or(IpNet::V6(Default::default())),
            ],
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
            window: Duration::from_secs(600),
            ban: Duration::from_secs(600),
            ban_max: Duration::from_secs(7 * 86_400),
            sign_in_failures: 5,
            tls_failures: 20,
            not_found: 30,
            unauthorized: 30,
            ingest_refusals: 10,
            kernel_after: 50,
            alert_quiet: Duration::from_secs(3600),
        }
    }
}

/// How long data is kept at full detail (humantime durations).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Signed reports older than this are deleted (each probe's latest stays).
    #[serde(deserialize_with = "duration")]
    pub reports: std::time::Duration,
    /// WAN samples older than this are rolled up into hours.
    #[serde(deserialize_with = "duration")]
    pub wan_raw: std::time::Duration,
    /// Hourly WAN rollups older than this are rolled up into days, kept for ever.
    #[serde(deserialize_with = "duration")]
    pub wan_hourly: std::time::Duration,
    /// How often the retention pass runs.
    #[serde(deserialize_with = "duration")]
    pub every: std::time::Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |n: u64| std::time::Duration::from_secs(n * 86_400);
        Self {
            reports: days(14),
            wan_raw: days(7),
            wan_hourly: days(90),
            every: std::time::Duration::from_secs(3600),
        }
    }
}

impl RetentionConfig {
    pub fn policy(&self) -> anyhow::Result<crate::db::Policy> {
        Ok(crate::db::Policy {
            reports: self.reports.try_into()?,
            wan_raw: self.wan_raw.try_into()?,
            wan_hourly: self.wan_hourly.try_into()?,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub listen: SocketAddr,
    /// The `host:port` harvesters dial, written into enrollment tokens. Default: `listen`,
    /// with this machine's host name when `listen` is a wildcard address.
    pub public_address: Option<String>,
    /// Largest signed report accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Lifetime of probe certificates, in days; harvesters renew at two thirds of it.
    #[serde(default = "default_probe_days")]
    pub probe_certificate_days: u32,
    /// Enrollment requests allowed per client IP and minute.
    #[serde(default = "default_enroll_rate")]
    pub enroll_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// The operator's own certificate chain (PEM) for the web listener, with `key`. Default:
    /// the certificate `nester init` issued from the nester CA.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// A plain-HTTP listener that only redirects to HTTPS (for example `0.0.0.0:80`).
    pub redirect_http: Option<SocketAddr>,
    /// Where redirects point, `https://name[:port]`. Default: this machine's name (or the
    /// listen address when it is not a wildcard) and the web listener's port. Never taken
    /// from the request's `Host` header.
    pub public_url: Option<String>,
    /// A session ends after this long without a request (default 30m).
    #[serde(default = "default_session_idle", deserialize_with = "duration")]
    pub session_idle: std::time::Duration,
    /// A session ends this long after sign-in, whatever happens (default 12h).
    #[serde(default = "default_session_lifetime", deserialize_with = "duration")]
    pub session_lifetime: std::time::Duration,
    /// Largest request body (forms) accepted, in bytes.
    #[serde(default = "default_web_body")]
    pub max_body_bytes: usize,
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

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

fn default_session_idle() -> std::time::Duration {
    std::time::Duration::from_secs(30 * 60)
}

fn default_session_lifetime() -> std::time::Duration {
    std::time::Duration::from_secs(12 * 60 * 60)
}

fn default_web_body() -> usize {
    64 * 1024
}

fn default_probe_days() -> u32 {
    30
}

fn default_enroll_rate() -> u32 {
    10
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

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        if let Some(metrics) = &config.metrics {
            metrics.check().map_err(anyhow::Error::msg)?;
        }
        anyhow::ensure!(
            config.ingest.max_body_bytes >= 1024,
            "`ingest.max_body_bytes` must be at least 1024"
        );
        anyhow::ensure!(
            (1..=397).contains(&config.ingest.probe_certificate_days),
            "`ingest.probe_certificate_days` must be between 1 and 397"
        );
        anyhow::ensure!(
            config.ingest.enroll_per_minute >= 1,
            "`ingest.enroll_per_minute` must be at least 1"
        );
        anyhow::ensure!(
            config.ingest.listen.port() == 0 || config.ingest.listen != config.web.listen,
            "`ingest.listen` and `web.listen` must differ"
        );
        anyhow::ensure!(
            config.web.session_idle >= std::time::Duration::from_secs(60)
                && config.web.session_idle <= config.web.session_lifetime,
            "`web.session_idle` must be at least 1m and at most `web.session_lifetime`"
        );
        anyhow::ensure!(
            config.web.max_body_bytes >= 1024,
            "`web.max_body_bytes` must be at least 1024"
        );
        let r = &config.retention;
        anyhow::ensure!(
            r.reports >= std::time::Duration::from_secs(86_400),
            "`retention.reports` must be at least 1d"
        );
        anyhow::ensure!(
            r.wan_raw >= std::time::Duration::from_secs(3600) && r.wan_raw <= r.wan_hourly,
            "`retention.wan_raw` must be at least 1h and at most `retention.wan_hourly`"
        );
        anyhow::ensure!(
            r.every >= std::time::Duration::from_secs(60),
            "`retention.every` must be at least 1m"
        );
        if let Some(url) = &config.web.public_url {
            anyhow::ensure!(
                url.starts_with("https://") && !url.contains(['?', '#', ' ']),
                "`web.public_url` must be an https:// address without query, e.g. https://nester.example.net:8443"
            );
        }
        anyhow::ensure!(
            (1..=200).contains(&config.certificates.server_days),
            "`certificates.server_days` must be between 1 and 200 (publicly trusted certificates may not live longer)"
        );
        for (name, channel) in &config.notify.channels {
            channel.check(name).map_err(anyhow::Error::msg)?;
        }
        config.ssh.check().map_err(anyhow::Error::msg)?;
        Ok(config)
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

    /// A config for a data directory with both listeners on loopback, ports chosen by the OS.
    pub fn loopback(data_dir: &Path) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            data_dir: data_dir.to_path_buf(),
            ingest: IngestConfig {
                listen: any,
                public_address: None,
                max_body_bytes: default_max_body(),
                probe_certificate_days: default_probe_days(),
                enroll_per_minute: default_enroll_rate(),
            },
            web: WebConfig {
                listen: any,
                cert: None,
                key: None,
                redirect_http: None,
                public_url: None,
                session_idle: default_session_idle(),
                session_lifetime: default_session_lifetime(),
                max_body_bytes: default_web_body(),
            },
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
}
