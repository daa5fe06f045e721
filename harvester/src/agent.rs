//! The daemon: scan, sign, deliver, every interval.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;

use crate::config::Config;
use crate::scan::{self, PortSpec};
use crate::state::{Identity, Sequence};
use crate::uplink::{Delivery, Uplink};

pub struct Agent {
    config: Config,
    ports: PortSpec,
    probe_id: Uuid,
    signer: shared::Signer,
    sequence: Sequence,
    uplink: Uplink,
}

/// A report signed and ready to send.
pub struct Signed {
    pub report_id: Uuid,
    pub sequence: u64,
    pub jws: String,
}

impl Agent {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let identity = Identity::load(&config.state_dir)?;
        let uplink = Uplink::new(
            &config.nester.ingest,
            config.nester.server_name.as_deref(),
            &identity,
        )?;
        Ok(Self {
            ports: config.ports()?,
            probe_id: identity.probe_id,
            signer: identity.signer()?,
            sequence: Sequence::open(&config.state_dir)?,
            uplink,
            config,
        })
    }

    pub fn probe_id(&self) -> Uuid {
        self.probe_id
    }

    /// Scans and signs one report.
    pub async fn produce(&mut self) -> anyhow::Result<Signed> {
        let result = scan::scan(
            &self.config.scan.targets,
            &self.ports,
            &self.config.scan.options,
        )
        .await?;
        let sequence = self.sequence.reserve()?;
        let report = crate::report::build(self.probe_id, &self.config.site, sequence, result);
        let jws = self.signer.sign_report(&report)?;
        Ok(Signed {
            report_id: report.report_id,
            sequence,
            jws,
        })
    }

    /// Posts one signed report.
    pub async fn deliver(&mut self, signed: &Signed) -> anyhow::Result<Delivery> {
        self.uplink
            .send(signed.jws.clone())
            .await
            .with_context(|| format!("while delivering report {}", signed.report_id))
    }

    /// One full cycle: scan, sign, deliver.
    pub async fn cycle(&mut self) -> anyhow::Result<(Signed, Delivery)> {
        let signed = self.produce().await?;
        let delivery = self.deliver(&signed).await?;
        Ok((signed, delivery))
    }

    /// Runs cycles until `shutdown` completes. A failed cycle is logged and the next one runs
    /// on schedule. (Until the durable spool lands, a report that cannot be delivered is lost
    /// and its sequence number shows as a gap at the nester.)
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let interval = Duration::from_secs(self.config.interval_secs);
        loop {
            match self.cycle().await {
                Ok((signed, delivery)) => tracing::info!(
                    report_id = %signed.report_id, sequence = signed.sequence, ?delivery, "report delivered"
                ),
                Err(e) => tracing::error!(error = format!("{e:#}"), "scan cycle failed"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(interval + jitter(interval)) => {}
            }
        }
    }
}

/// 0 to 10 % of `interval`, so sites started together drift apart.
fn jitter(interval: Duration) -> Duration {
    let mut b = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return Duration::ZERO;
    }
    interval.mul_f64(f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX) / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let interval = Duration::from_secs(300);
        for _ in 0..100 {
            assert!(jitter(interval) <= Duration::from_secs(30));
        }
    }
}
