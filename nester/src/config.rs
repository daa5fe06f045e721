//! `nester.toml`. The annotated example in `deploy/nester.example.toml` is the reference;
//! `nester default-config` prints it and a test keeps it loadable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const EXAMPLE: &str = include_str!("../../deploy/nester.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Created by `nester init`: database and PKI.
    pub data_dir: PathBuf,
    pub ingest: IngestConfig,
    pub web: WebConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub listen: SocketAddr,
    /// Largest signed report accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub listen: SocketAddr,
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        anyhow::ensure!(
            config.ingest.max_body_bytes >= 1024,
            "`ingest.max_body_bytes` must be at least 1024"
        );
        anyhow::ensure!(
            config.ingest.listen.port() == 0 || config.ingest.listen != config.web.listen,
            "`ingest.listen` and `web.listen` must differ"
        );
        Ok(config)
    }

    /// A config for a data directory with both listeners on loopback, ports chosen by the OS.
    pub fn loopback(data_dir: &Path) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            data_dir: data_dir.to_path_buf(),
            ingest: IngestConfig {
                listen: any,
                max_body_bytes: default_max_body(),
            },
            web: WebConfig { listen: any },
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
