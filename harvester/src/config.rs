//! `harvester.toml`. The annotated example in `deploy/harvester.example.toml` is the
//! reference; `harvester default-config` prints it and a test keeps it loadable.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::scan::{PortSpec, ScanOptions};

pub const EXAMPLE: &str = include_str!("../../deploy/harvester.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Site label, shown on the dashboard.
    pub site: String,
    /// Keys, certificates and counters.
    pub state_dir: PathBuf,
    /// Seconds between scan cycles (a random 0-10 % is added to spread sites out).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    pub nester: NesterConfig,
    pub scan: ScanConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NesterConfig {
    /// The nester's ingest listener, `host:port`.
    pub ingest: String,
    /// Name expected in the nester's certificate; default: the host part of `ingest`.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    pub targets: Vec<String>,
    /// Port specification, e.g. `22,80,443,8000-8100`.
    pub ports: String,
    #[serde(flatten)]
    pub options: ScanOptions,
}

fn default_interval() -> u64 {
    300
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.site.trim().is_empty(), "`site` must not be empty");
        anyhow::ensure!(
            self.interval_secs >= 1,
            "`interval_secs` must be at least 1"
        );
        anyhow::ensure!(
            !self.scan.targets.is_empty(),
            "`scan.targets` must name at least one target"
        );
        anyhow::ensure!(
            self.scan.options.concurrency >= 1,
            "`scan.concurrency` must be at least 1"
        );
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
        assert_eq!(config.interval_secs, 300);
        assert!(config.ports().unwrap().ports().contains(&22));
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        let typo = EXAMPLE.replace("interval_secs", "intervall_secs");
        let err = format!("{:#}", Config::parse(&typo).unwrap_err());
        assert!(
            err.contains("intervall_secs") && err.contains("line"),
            "{err}"
        );
        let bad_ports = EXAMPLE.replace("ports = \"", "ports = \"0,");
        let err = format!("{:#}", Config::parse(&bad_ports).unwrap_err());
        assert!(err.contains("port 0"), "{err}");
        let err = format!(
            "{:#}",
            Config::load(Path::new("/nonexistent/h.toml")).unwrap_err()
        );
        assert!(err.contains("/nonexistent/h.toml"), "{err}");
    }
}
