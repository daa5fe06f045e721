//! WAN latency rounds: each cycle, N probes to each configured WAN target, summarised as
//! min / median / avg / max / jitter (standard deviation) / loss.
//!
//! ICMP echo first (surge-ping: a raw socket as root, a datagram socket where
//! `ping_group_range` allows). Where ICMP is unavailable or unanswered, TCP connect round
//! trips to a configured port, where a reset counts as an answer. The method is tagged in the
//! report, so readers know which they are seeing.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;
use shared::report::{WanMeasurement, WanMethod};
use surge_ping::{Client, Config, ICMP, PingSequence};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WanOptions {
    /// Addresses or host names to measure, e.g. the site's gateway and a public resolver.
    pub targets: Vec<String>,
    /// Probes per target per cycle.
    pub probes: u32,
    /// How long one probe may wait for its answer.
    pub timeout_ms: u64,
    /// Pause between two probes to the same target.
    pub interval_ms: u64,
    /// Try ICMP first (set false where ICMP is known to be blocked).
    pub icmp: bool,
    /// Port for the TCP fallback; a closed port answers too (with a reset).
    pub tcp_port: u16,
}

impl Default for WanOptions {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            probes: 10,
            timeout_ms: 1000,
            interval_ms: 100,
            icmp: true,
            tcp_port: 443,
        }
    }
}

/// Measures every target, one after the other (their probes must not queue behind each other).
pub async fn measure_all(options: &WanOptions) -> Vec<WanMeasurement> {
    let mut out = Vec::with_capacity(options.targets.len());
    for target in &options.targets {
        out.push(measure(target, options).await);
    }
    out
}

pub async fn measure(target: &str, options: &WanOptions) -> WanMeasurement {
    let Some(ip) = resolve(target).await else {
        return summary(
            target,
            WanMethod::Icmp,
            options.probes,
            &[],
            Some(format!("cannot resolve {target}")),
        );
    };
    let icmp_note = if options.icmp {
        match icmp_round(ip, options).await {
            Ok(rtts) if !rtts.is_empty() => {
                return summary(target, WanMethod::Icmp, options.probes, &rtts, None);
            }
            Ok(_) => "ICMP unanswered".to_string(),
            Err(e) => format!("ICMP unavailable ({e})"),
        }
    } else {
        "ICMP disabled".to_string()
    };
    let rtts = tcp_round(SocketAddr::new(ip, options.tcp_port), options).await;
    let note = if rtts.is_empty() {
        format!(
            "{icmp_note}; no answer on TCP port {} either",
            options.tcp_port
        )
    } else {
        format!("{icmp_note}; TCP connect to port {}", options.tcp_port)
    };
    summary(target, WanMethod::Tcp, options.probes, &rtts, Some(note))
}

async fn resolve(target: &str) -> Option<IpAddr> {
    if let Ok(ip) = target.parse() {
        return Some(ip);
    }
    tokio::net::lookup_host((target, 0))
        .await
        .ok()?
        .next()
        .map(|a| a.ip())
}

/// Unanswered echo requests in a row, from the first, after which ICMP counts as blocked and
/// the round moves to TCP. A lossy path that answers some of them stays on ICMP.
const ICMP_GIVE_UP: u32 = 3;

/// Round-trip times in milliseconds of the echo requests that were answered.
async fn icmp_round(ip: IpAddr, options: &WanOptions) -> Result<Vec<f64>, surge_ping::SurgeError> {
    let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
    let client = Client::new(&Config::builder().kind(kind).build())?;
    let mut pinger = client
        .pinger(ip, crate::scan::discovery::ping_identifier())
        .await;
    pinger.timeout(Duration::from_millis(options.timeout_ms));
    let payload = [0u8; 56];
    let mut rtts = Vec::new();
    for seq in 0..options.probes {
        if seq > 0 {
            tokio::time::sleep(Duration::from_millis(options.interval_ms)).await;
        }
        match pinger.ping(PingSequence(seq as u16), &payload).await {
            Ok((_, rtt)) => rtts.push(rtt.as_secs_f64() * 1000.0),
            Err(surge_ping::SurgeError::Timeout { .. }) => {}
            Err(e) if seq == 0 => return Err(e),
            Err(_) => {}
        }
        if rtts.is_empty() && seq + 1 >= ICMP_GIVE_UP {
            break; // blocked, not lossy: do not spend the whole round waiting
        }
    }
    Ok(rtts)
}

/// Round-trip times of TCP handshakes (or resets) to `addr`.
async fn tcp_round(addr: SocketAddr, options: &WanOptions) -> Vec<f64> {
    let mut rtts = Vec::new();
    for seq in 0..options.probes {
        if seq > 0 {
            tokio::time::sleep(Duration::from_millis(options.interval_ms)).await;
        }
        let started = Instant::now();
        let answered = match tokio::time::timeout(
            Duration::from_millis(options.timeout_ms),
            TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            Err(_) => false,
        };
        if answered {
            rtts.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    rtts
}

/// Summary statistics of one round. `sent` probes went out; `rtts` are the answers.
pub fn summary(
    target: &str,
    method: WanMethod,
    sent: u32,
    rtts: &[f64],
    note: Option<String>,
) -> WanMeasurement {
    let received = rtts.len() as u32;
    let loss_pct = if sent == 0 {
        100.0
    } else {
        f64::from(sent - received.min(sent)) * 100.0 / f64::from(sent)
    };
    let mut sorted = rtts.to_vec();
    sorted.sort_by(f64::total_cmp);
    let stats = (!sorted.is_empty()).then(|| {
        let n = sorted.len() as f64;
        let avg = sorted.iter().sum::<f64>() / n;
        let median = if sorted.len() % 2 == 1 {
            sorted[sorted.len() / 2]
        } else {
            (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
        };
        let jitter = (sorted.iter().map(|x| (x - avg).powi(2)).sum::<f64>() / n).sqrt();
        (sorted[0], median, avg, sorted[sorted.len() - 1], jitter)
    });
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    WanMeasurement {
        target: target.to_string(),
        method,
        sent,
        received: received.min(sent),
        min_ms: stats.map(|s| round(s.0)),
        median_ms: stats.map(|s| round(s.1)),
        avg_ms: stats.map(|s| round(s.2)),
        max_ms: stats.map(|s| round(s.3)),
        jitter_ms: stats.map(|s| round(s.4)),
        loss_pct: round(loss_pct),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_round() {
        let m = summary("gw", WanMethod::Icmp, 5, &[4.0, 1.0, 3.0, 2.0], None);
        assert_eq!((m.sent, m.received, m.loss_pct), (5, 4, 20.0));
        assert_eq!(
            (m.min_ms, m.median_ms, m.avg_ms, m.max_ms),
            (Some(1.0), Some(2.5), Some(2.5), Some(4.0))
        );
        assert_eq!(m.jitter_ms, Some(1.118)); // population standard deviation of 1..4
        let lost = summary("gw", WanMethod::Tcp, 10, &[], Some("no answer".into()));
        assert_eq!(
            (lost.loss_pct, lost.median_ms, lost.note.as_deref()),
            (100.0, None, Some("no answer"))
        );
    }

    #[tokio::test]
    async fn tcp_rounds_count_resets_as_answers() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let options = WanOptions {
            probes: 4,
            interval_ms: 1,
            icmp: false,
            tcp_port: closed.port(),
            ..WanOptions::default()
        };
        let m = measure("127.0.0.1", &options).await;
        assert_eq!((m.method, m.received, m.loss_pct), (WanMethod::Tcp, 4, 0.0));
        assert!(
            m.note.as_deref().unwrap().contains("ICMP disabled"),
            "{m:?}"
        );
        assert!(
            m.min_ms.unwrap() <= m.median_ms.unwrap() && m.median_ms.unwrap() <= m.max_ms.unwrap()
        );
    }

    /// ICMP echo on loopback needs a raw socket (root) or `ping_group_range`; CI runs as root.
    #[tokio::test]
    async fn icmp_rounds_on_loopback() {
        let options = WanOptions {
            probes: 3,
            interval_ms: 1,
            ..WanOptions::default()
        };
        let m = measure("127.0.0.1", &options).await;
        assert_eq!(
            (m.method, m.received),
            (WanMethod::Icmp, 3),
            "ICMP must work here (root): {m:?}"
        );
        assert_eq!(m.note, None);
    }
}
