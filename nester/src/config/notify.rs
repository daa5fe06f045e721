//! `[notify]` in `nester.toml`: where alert notifications go. Channels are named
//! (`[notify.channels.noc-webhook]`), each a generic webhook (JSON, signed with HMAC-SHA256),
//! a Slack- or Mattermost-compatible webhook, or e-mail over SMTP; each takes the severities
//! and sites it wants (all by default). Secrets live in files of their own, never here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Alerts of one site starting within this long of each other go out as one message.
    #[serde(deserialize_with = "duration")]
    pub group_wait: Duration,
    /// A failed delivery is retried after 5 s, then twice as long each time, up to this.
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    /// A channel failing for this long raises an alert of its own.
    #[serde(deserialize_with = "duration")]
    pub channel_alert_after: Duration,
    /// An alert that keeps firing and resolving notifies at most once in this long.
    #[serde(deserialize_with = "duration")]
    pub flap_interval: Duration,
    pub channels: BTreeMap<String, Channel>,
}

impl NotifyConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        for (name, channel) in &self.channels {
            channel
                .check(name)
                .map_err(|e| ConfigError::new(format!("notify.channels.{name}.kind"), e))?;
        }
        Ok(())
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            group_wait: Duration::from_secs(30),
            retry_max: Duration::from_secs(300),
            channel_alert_after: Duration::from_secs(600),
            flap_interval: Duration::from_secs(3600),
            channels: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// One channel; which fields apply depends on `kind` ([`Channel::check`] says what is
/// missing).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub kind: ChannelKind,
    /// Severities sent here: `info`, `warning`, `critical` (default: all).
    #[serde(default)]
    pub severities: Vec<String>,
    /// Sites sent here (default: all; alerts about no site, such as the nester's own
    /// certificates, go to channels without a site list).
    #[serde(default)]
    pub sites: Vec<String>,
    /// Webhook and Slack: where to POST (http or https).
    pub url: Option<String>,
    /// Webhook: the HMAC-SHA256 key, in a file of its own (0600).
    pub secret_file: Option<PathBuf>,
    /// A CA (PEM) to trust besides the usual ones: a receiver or SMTP server with a private
    /// PKI.
    pub ca_file: Option<PathBuf>,
    /// E-mail: the SMTP server's name, port (default 587 for STARTTLS, 465 for TLS), TLS mode.
    pub server: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<SmtpTls>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

impl Channel {
    /// What this channel lacks or has wrong, for `name`'s error message.
    pub fn check(&self, name: &str) -> Result<(), String> {
        let need = |what: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(format!(
                    "[notify.channels.{name}]: a {:?} channel needs `{what}`",
                    self.kind
                ))
            }
        };
        if let Some(bad) = self
            .severities
            .iter()
            .find(|s| !SEVERITIES.contains(&s.as_str()))
        {
            return Err(format!(
                "[notify.channels.{name}]: severity `{bad}` is not one of info, warning, critical"
            ));
        }
        match self.kind {
            ChannelKind::Webhook => {
                need("url", self.url.is_some())?;
                need("secret_file", self.secret_file.is_some())
            }
            ChannelKind::Slack => need("url", self.url.is_some()),
            ChannelKind::Email => {
                need("server", self.server.is_some())?;
                need("from", self.from.is_some())?;
                need("to", !self.to.is_empty())?;
                need(
                    "password_file (with username)",
                    self.username.is_none() || self.password_file.is_some(),
                )
            }
        }
    }

    /// Whether an alert of `severity` about `site` goes here.
    pub fn wants(&self, severity: &str, site: Option<&str>) -> bool {
        (self.severities.is_empty() || self.severities.iter().any(|s| s == severity))
            && (self.sites.is_empty()
                || site.is_some_and(|site| self.sites.iter().any(|s| s == site)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_say_what_they_lack_and_route_by_severity_and_site() {
        let c: NotifyConfig = toml::from_str(
            r#"
            [channels.noc]
            kind = "webhook"
            url = "https://hooks.example.net/seahawks"
            secret_file = "/etc/seahawks/noc.secret"
            severities = ["critical"]
            sites = ["kc-01"]
            [channels.mail]
            kind = "email"
            server = "smtp.example.net"
            from = "nester@example.net"
            "#,
        )
        .unwrap();
        let noc = &c.channels["noc"];
        assert!(noc.check("noc").is_ok());
        assert!(noc.wants("critical", Some("kc-01")));
        assert!(!noc.wants("warning", Some("kc-01")));
        assert!(!noc.wants("critical", Some("stl-02")));
        assert!(!noc.wants("critical", None));
        let mail = c.channels["mail"].check("mail").unwrap_err();
        assert!(mail.contains("`to`"), "{mail}");
        assert!(toml::from_str::<NotifyConfig>("[channels.x]\nkind = \"pager\"").is_err());
        let bad: NotifyConfig =
            toml::from_str("[channels.x]\nkind = \"slack\"\nurl = \"u\"\nseverities = [\"loud\"]")
                .unwrap();
        assert!(bad.channels["x"].check("x").unwrap_err().contains("loud"));
    }
}
