//! Host discovery: is anybody at this address?
//!
//! ICMP echo first (surge-ping). When it gets no answer, or ICMP sockets are unavailable, a
//! TCP connect to a few common ports: a completed handshake or a reset both prove the host is
//! there. Each live host records how it was found and the round trip of that answer.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use shared::report::{Discovery, DiscoveryMethod};
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence};

use super::tcp::{self, Outcome};

/// Ports tried when ICMP gets no answer, as nmap's default TCP discovery does.
pub const DEFAULT_PORTS: &[u16] = &[22, 80, 443, 445, 3389];

/// ICMP clients for both families; `None` where the socket could not be opened.
struct Pingers {
    v4: Option<Client>,
    v6: Option<Client>,
}

impl Pingers {
    fn new() -> Self {
        let open = |kind| match Client::new(&Config::builder().kind(kind).build()) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(error = %e, ?kind, "ICMP unavailable (needs root or ping_group_range); discovering hosts over TCP only");
                None
            }
        };
        Self {
            v4: open(ICMP::V4),
            v6: open(ICMP::V6),
        }
    }
}

/// Discovers every address; `None` for an address nobody answered at.
pub async fn discover(
    addresses: &[IpAddr],
    ports: &[u16],
    timeout: Duration,
    retries: u32,
    concurrency: usize,
) -> Vec<(IpAddr, Option<Discovery>)> {
    let pingers = Pingers::new();
    let pingers = &pingers;
    stream::iter(addresses.iter().copied())
        .map(|ip| async move {
            let found = match icmp(pingers, ip, timeout, retries).await {
                Some(found) => Some(found),
                None => tcp_any(ip, ports, timeout).await,
            };
            (ip, found)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

async fn icmp(pingers: &Pingers, ip: IpAddr, timeout: Duration, retries: u32) -> Option<Discovery> {
    let client = if ip.is_ipv4() {
        pingers.v4.as_ref()
    } else {
        pingers.v6.as_ref()
    }?;
    let mut id = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut id);
    let mut pinger = client
        .pinger(ip, PingIdentifier(u16::from_le_bytes(id)))
        .await;
    pinger.timeout(timeout);
    for seq in 0..=retries {
        if let Ok((_, rtt)) = pinger.ping(PingSequence(seq as u16), &[0u8; 16]).await {
            return Some(Discovery {
                method: DiscoveryMethod::Icmp,
                rtt_ms: millis(rtt),
            });
        }
    }
    None
}

/// The first discovery port that answers (handshake or reset), tried together.
async fn tcp_any(ip: IpAddr, ports: &[u16], timeout: Duration) -> Option<Discovery> {
    let mut attempts = stream::iter(ports.iter().copied())
        .map(|port| async move {
            let started = Instant::now();
            match tcp::probe(SocketAddr::new(ip, port), timeout, 0).await {
                Ok(Outcome::Open(_) | Outcome::Closed) => Some(started.elapsed()),
                _ => None,
            }
        })
        .buffer_unordered(ports.len().max(1));
    while let Some(answer) = attempts.next().await {
        if let Some(rtt) = answer {
            return Some(Discovery {
                method: DiscoveryMethod::Tcp,
                rtt_ms: millis(rtt),
            });
        }
    }
    None
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMP on loopback needs a raw socket (root) or `ping_group_range`; CI runs as root.
    #[tokio::test]
    async fn loopback_answers_icmp() {
        let found = discover(
            &["127.0.0.1".parse().unwrap()],
            DEFAULT_PORTS,
            Duration::from_secs(1),
            0,
            4,
        )
        .await;
        let discovery = found[0].1.as_ref().expect("127.0.0.1 is up");
        assert_eq!(discovery.method, DiscoveryMethod::Icmp);
        assert!(discovery.rtt_ms >= 0.0);
    }

    #[tokio::test]
    async fn tcp_finds_a_host_by_its_reset() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let found = tcp_any(
            "127.0.0.1".parse().unwrap(),
            &[closed],
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(found.map(|d| d.method), Some(DiscoveryMethod::Tcp));
    }
}
