//! `[web]` in `nester.toml`: the HTTPS listener of the dashboard and the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
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
    #[serde(deserialize_with = "duration")]
    pub session_idle: Duration,
    /// A session ends this long after sign-in, whatever happens (default 12h).
    #[serde(deserialize_with = "duration")]
    pub session_lifetime: Duration,
    /// Largest request body (forms) accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            cert: None,
            key: None,
            redirect_http: None,
            public_url: None,
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 60 * 60),
            max_body_bytes: 64 * 1024,
        }
    }
}

impl WebConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.session_idle < Duration::from_secs(60) || self.session_idle > self.session_lifetime
        {
            return Err(ConfigError::bound(
                "web.session_idle",
                "must be at least 1m and at most `web.session_lifetime`",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::bound(
                "web.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if let Some(url) = &self.public_url
            && (!url.starts_with("https://") || url.contains(['?', '#', ' ']))
        {
            return Err(ConfigError::bound(
                "web.public_url",
                "must be an https:// address without query, e.g. https://nester.example.net:8443",
            ));
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(ConfigError::new(
                "web.cert",
                "[web] needs both `cert` and `key`, or neither",
            ));
        }
        Ok(())
    }
}
