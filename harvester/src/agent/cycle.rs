//! One cycle's steps, in order, with one error policy for the daemon and the tests alike:
//! every step runs even when one before it failed (monitoring goes on without a renewed
//! certificate; sshd keeps the trust it had), and each failure is logged with its step.
//! Delivery is not a step: the daemon delivers whenever the spool changes (a new report
//! included), so a nester that hangs never holds up the next report.

use anyhow::Context;
use time::OffsetDateTime;

use super::{Agent, Signed};
use crate::uplink::Delivery;

/// A step of a cycle, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetch the CAs to trust (and learn the one the nester issues from).
    Trust,
    /// Renew the certificate when due, or when it is not from the issuing CA.
    Renew,
    /// Install the box's sshd trust and host certificate (`[ssh]`).
    SshTrust,
    /// Scan, sign and spool a report.
    Produce,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Trust, Step::Renew, Step::SshTrust, Step::Produce];

    fn failed(self) -> &'static str {
        match self {
            Step::Trust => "cannot refresh the trusted CAs",
            Step::Renew => "certificate renewal failed",
            Step::SshTrust => "cannot update the box's SSH trust",
            Step::Produce => "scan cycle failed",
        }
    }
}

/// What a cycle did: the report it spooled (none when the spool is full or the scan
/// failed) and the steps that failed.
#[derive(Debug, Default)]
pub struct Cycle {
    pub signed: Option<Signed>,
    pub failures: Vec<(Step, anyhow::Error)>,
}

impl Cycle {
    /// The report, or the first failure (with its step).
    pub fn into_result(self) -> anyhow::Result<Signed> {
        if let Some((step, error)) = self.failures.into_iter().next() {
            return Err(error.context(step.failed()));
        }
        self.signed.context("the spool is full")
    }
}

impl Agent {
    /// Every step of [`Step::ALL`], each failure logged and kept.
    pub async fn steps(&mut self) -> Cycle {
        let mut cycle = Cycle::default();
        let mut issuing = None;
        for step in Step::ALL {
            let done = match step {
                Step::Trust => self.refresh_trust().await.map(|ca| issuing = ca),
                Step::Renew => {
                    let now = OffsetDateTime::now_utc();
                    self.renew_if_due(now, issuing.as_deref()).await.map(drop)
                }
                Step::SshTrust => self.refresh_ssh_trust().await.map(drop),
                Step::Produce => self.produce().await.map(|signed| {
                    if let Some(s) = &signed {
                        tracing::info!(report_id = %s.report_id, sequence = s.sequence, "report spooled");
                    }
                    cycle.signed = signed;
                }),
            };
            if let Err(e) = done {
                tracing::error!(error = format!("{e:#}"), "{}", step.failed());
                cycle.failures.push((step, e));
            }
        }
        cycle
    }

    /// One whole cycle, for tests and one-shot use: the daemon's steps, then delivery of the
    /// spool, as the daemon's loop does after them. Returns the new report with how it was delivered, or the first failure.
    pub async fn cycle(&mut self) -> anyhow::Result<(Signed, Delivery)> {
        let signed = self.steps().await.into_result()?;
        let delivered = self.drain().await?;
        let delivery = delivered
            .iter()
            .find(|(seq, _)| *seq == signed.sequence)
            .map(|(_, d)| *d)
            .context("the new report was not delivered")?;
        Ok((signed, delivery))
    }
}
