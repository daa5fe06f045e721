//! Prometheus metrics, the same way in the nester and the harvester: the `[metrics]` section
//! of their config, and the process's recorder, whose text each serves at `/metrics` on its
//! own listener. Histograms get buckets: durations in seconds (names ending `_seconds`) from
//! 1 ms to 5 min, counts (names ending `_jobs`) in powers of two.

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// `[metrics]`: where Prometheus scrapes. Without the section, no metrics listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Plain HTTP, `GET /metrics`: keep it on loopback (or a management network).
    pub listen: SocketAddr,
    /// A non-loopback `listen` is refused unless this says the exposure is deliberate.
    #[serde(default)]
    pub allow_public: bool,
}

impl MetricsConfig {
    /// Why this section is refused, in words for the operator.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback() || self.allow_public {
            Ok(())
        } else {
            Err(format!(
                "[metrics] listen = \"{}\" is not a loopback address: the metrics would be open to \
                 anyone who can reach it. Use 127.0.0.1, or set allow_public = true if a firewall \
                 keeps it to your Prometheus",
                self.listen
            ))
        }
    }
}

const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];
const JOBS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use; what `metrics::counter!` and the like
/// record into, and what `/metrics` renders. Call it at start: what is recorded before is lost.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_jobs".into()), JOBS))
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                // Fails only when another recorder is installed: then ours records nothing,
                // which the metrics tests would show.
                let _ = metrics::set_global_recorder(recorder);
                handle
            }
            // Only for empty bucket lists, which the constants above are not.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// The text exposition of every metric recorded so far.
pub fn render() -> String {
    let handle = recorder();
    handle.run_upkeep();
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_allowed() {
        let config = |listen: &str, allow_public| MetricsConfig {
            listen: listen.parse().unwrap(),
            allow_public,
        };
        assert!(config("127.0.0.1:9464", false).check().is_ok());
        assert!(config("[::1]:9464", false).check().is_ok());
        let refused = config("0.0.0.0:9464", false).check().unwrap_err();
        assert!(refused.contains("allow_public"), "{refused}");
        assert!(config("192.0.2.7:9464", false).check().is_err());
        assert!(config("0.0.0.0:9464", true).check().is_ok());
    }

    #[test]
    fn histograms_have_buckets() {
        // What is recorded before the recorder is installed is lost: binaries install it first.
        recorder();
        metrics::histogram!("shared_test_duration_seconds").record(0.003);
        metrics::histogram!("shared_test_batch_jobs").record(3.0);
        let text = render();
        assert!(
            text.contains("shared_test_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shared_test_batch_jobs_bucket{le=\"4\"} 1"),
            "{text}"
        );
    }
}
