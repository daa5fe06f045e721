//! Connect timeouts that follow each host's measured round trips, as nmap's timing does:
//! a smoothed RTT and its variation (RFC 6298), timeout = srtt + 4 × rttvar, kept between a
//! floor and a ceiling. Before any answer the ceiling applies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The variation assumed from a host's first sample, so one lucky answer cannot shrink the
/// timeout to the floor at once (nmap uses the same 5 ms).
const FIRST_RTTVAR: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct Timing {
    min: Duration,
    max: Duration,
    /// Smoothed round trip and its variation; `None` before the first sample.
    estimate: Option<(Duration, Duration)>,
}

impl Timing {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min: min.min(max),
            max,
            estimate: None,
        }
    }

    /// Takes one measured round trip (a handshake or a reset).
    pub fn sample(&mut self, rtt: Duration) {
        self.estimate = Some(match self.estimate {
            None => (rtt, FIRST_RTTVAR.max(rtt)),
            Some((srtt, rttvar)) => {
                let delta = rtt.abs_diff(srtt);
                let srtt = if rtt > srtt {
                    srtt + delta / 8
                } else {
                    srtt - delta / 8
                };
                let rttvar = if delta > rttvar {
                    rttvar + (delta - rttvar) / 4
                } else {
                    rttvar - (rttvar - delta) / 4
                };
                (srtt, rttvar)
            }
        });
    }

    /// How long the next attempt may wait for an answer.
    pub fn timeout(&self) -> Duration {
        match self.estimate {
            None => self.max,
            Some((srtt, rttvar)) => (srtt + rttvar * 4).clamp(self.min, self.max),
        }
    }
}

/// The timings of one scan: one per host, plus one for the whole scan that learns from every
/// answer. A host that has not answered yet (found by ARP, or scanned without discovery)
/// borrows the scan's timing, as nmap uses its group timing, instead of waiting the ceiling
/// on every port.
pub struct Timings {
    scan: Mutex<Timing>,
    hosts: HashMap<IpAddr, Mutex<Timing>>,
}

impl Timings {
    pub fn new(template: &Timing, hosts: impl IntoIterator<Item = IpAddr>) -> Self {
        Self {
            scan: Mutex::new(template.clone()),
            hosts: hosts
                .into_iter()
                .map(|ip| (ip, Mutex::new(template.clone())))
                .collect(),
        }
    }

    /// The timeout for the next attempt at `ip`.
    pub fn timeout(&self, ip: IpAddr) -> Duration {
        self.current(ip).0
    }

    /// The timeout for `ip`, and whether it rests on any answer yet (if not, it is the
    /// ceiling, and likely to shrink soon).
    fn current(&self, ip: IpAddr) -> (Duration, bool) {
        match self.hosts.get(&ip).map(lock) {
            Some(host) if host.estimate.is_some() => (host.timeout(), true),
            _ => {
                let scan = lock(&self.scan);
                (scan.timeout(), scan.estimate.is_some())
            }
        }
    }

    /// An answer from `ip` after `rtt`.
    pub fn sample(&self, ip: IpAddr, rtt: Duration) {
        if let Some(host) = self.hosts.get(&ip) {
            lock(host).sample(rtt);
        }
        lock(&self.scan).sample(rtt);
    }
}

/// How often an attempt that started before any answer re-reads its timeout: the first wave
/// of a scan must not wait the ceiling out once answers have shown it is far too long.
const RECHECK: Duration = Duration::from_millis(20);

/// Runs `attempt` until it completes or `ip`'s timeout has passed since it started; `None`
/// when it ran out. While the timeout is still the unlearnt ceiling, it is re-read as the
/// timing learns; otherwise one timer does (a short repeating timer per attempt costs a
/// runtime wake-up each: 10 % of a loopback scan).
pub async fn within<F: Future>(timings: &Timings, ip: IpAddr, attempt: F) -> Option<F::Output> {
    let started = Instant::now();
    let mut attempt = std::pin::pin!(attempt);
    loop {
        let (timeout, known) = timings.current(ip);
        let deadline = started + timeout;
        let now = Instant::now();
        if deadline <= now {
            return None;
        }
        let wake = if known {
            deadline
        } else {
            deadline.min(now + RECHECK)
        };
        if let Ok(out) = tokio::time::timeout_at(wake.into(), &mut attempt).await {
            return Some(out);
        }
    }
}

fn lock(m: &Mutex<Timing>) -> MutexGuard<'_, Timing> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_at_the_ceiling_and_follows_the_samples() {
        let mut t = Timing::new(100 * MS, 1000 * MS);
        assert_eq!(t.timeout(), 1000 * MS);
        // A LAN host answering in 0.2 ms: the floor.
        t.sample(MS / 5);
        assert_eq!(t.timeout(), 100 * MS);
        // A WAN-like host at 80 ms: 80 + 4 × 80 is 400 ms.
        let mut t = Timing::new(100 * MS, 1000 * MS);
        t.sample(80 * MS);
        assert_eq!(t.timeout(), 400 * MS);
        // Steady answers shrink the variation, and with it the timeout.
        for _ in 0..50 {
            t.sample(80 * MS);
        }
        assert!(t.timeout() < 110 * MS, "{:?}", t.timeout());
        assert!(t.timeout() >= 100 * MS);
    }

    #[test]
    fn a_slow_spike_widens_the_timeout_up_to_the_ceiling() {
        let mut t = Timing::new(100 * MS, 1000 * MS);
        for _ in 0..20 {
            t.sample(50 * MS);
        }
        let calm = t.timeout();
        t.sample(600 * MS);
        assert!(t.timeout() > calm, "{:?} <= {calm:?}", t.timeout());
        for _ in 0..20 {
            t.sample(5000 * MS);
        }
        assert_eq!(t.timeout(), 1000 * MS);
    }

    #[test]
    fn a_silent_host_borrows_the_scans_timing() {
        let (quiet, chatty): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t = Timings::new(&Timing::new(100 * MS, 1000 * MS), [quiet, chatty]);
        assert_eq!(t.timeout(quiet), 1000 * MS);
        t.sample(chatty, 20 * MS);
        assert_eq!(t.timeout(chatty), 100 * MS);
        assert_eq!(t.timeout(quiet), 100 * MS, "learnt from the other host");
        // Once it answers, its own round trips count.
        for _ in 0..3 {
            t.sample(quiet, 300 * MS);
        }
        assert!(t.timeout(quiet) > 300 * MS, "{:?}", t.timeout(quiet));
    }

    /// An attempt that started while nothing was known gives up once answers from elsewhere
    /// shrink the timeout, long before the ceiling.
    #[tokio::test]
    async fn an_attempt_in_flight_follows_the_shrinking_timeout() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Timings::new(&Timing::new(100 * MS, 10_000 * MS), [ip]);
        let started = Instant::now();
        let (silent, ()) = tokio::join!(within(&t, ip, std::future::pending::<()>()), async {
            tokio::time::sleep(50 * MS).await;
            t.sample("192.0.2.2".parse().unwrap(), MS);
        });
        assert_eq!(silent, None);
        let waited = started.elapsed();
        assert!(
            (100 * MS..1000 * MS).contains(&waited),
            "gave up after {waited:?}"
        );
        assert_eq!(within(&t, ip, async { 7 }).await, Some(7));
    }

    #[test]
    fn a_floor_above_the_ceiling_gives_way() {
        let mut t = Timing::new(2000 * MS, 500 * MS);
        t.sample(MS);
        assert_eq!(t.timeout(), 500 * MS);
    }
}
