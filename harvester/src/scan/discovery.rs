//! Host discovery: is anybody at this address?
//!
//! ICMP echo (surge-ping) and, a moment later, a TCP connect to a few common ports: a
//! completed handshake or a reset both prove the host is there, and the first answer wins.
//! When neither answers, a host on the local link may still have answered ARP: the kernel's
//! neighbour table then holds its address, and the host is up (as nmap reports it). Each live
//! host records how it was found, the round trip of that answer and, for ICMP, the reply's
//! TTL (evidence for the OS guess).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{StreamExt, stream};
use shared::report::{Discovery, DiscoveryMethod};
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence};

use super::tcp::{self, Outcome};
use super::timing::{Timing, Timings, within};

/// Ports tried when ICMP gets no answer, as nmap's default TCP discovery does.
pub const DEFAULT_PORTS: &[u16] = &[22, 80, 443, 445, 3389];

/// Echo request payload.
const PAYLOAD: [u8; 16] = [0; 16];

/// How long ICMP has to answer alone before the TCP probes start, so a host that answers
/// both is recorded with its ICMP reply (and TTL).
const ICMP_HEAD_START: Duration = Duration::from_millis(25);

/// What discovery learnt about a live host.
#[derive(Debug, Clone)]
pub struct Found {
    pub discovery: Discovery,
    /// TTL of the ICMP echo reply, when that is how the host was found.
    pub ttl: Option<u8>,
}

/// ICMP clients for both families; `None` where the socket could not be opened. Opened once
/// per [`super::Session`] (the daemon keeps it), so the sockets, and the warning when ICMP
/// is unavailable, do not come back every cycle.
pub struct Pingers {
    v4: Option<Client>,
    v6: Option<Client>,
}

impl Pingers {
    /// Needs a tokio runtime: each client reads its socket in a task.
    pub fn open() -> Self {
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

/// Discovers every address; `None` for an address nobody answered at. Waits follow
/// `timing` as it learns from the answers (all addresses share it: the first live hosts
/// teach how long the silent ones deserve).
pub async fn discover(
    pingers: &Pingers,
    addresses: &[IpAddr],
    ports: &[u16],
    timing: &Timing,
    retries: u32,
    concurrency: usize,
) -> Vec<(IpAddr, Option<Found>)> {
    let timings = Timings::new(timing, []);
    let timings = &timings;
    let mut found: Vec<(IpAddr, Option<Found>)> = stream::iter(addresses.iter().copied())
        .map(|ip| async move {
            let icmp = icmp(pingers, ip, timings, retries);
            let tcp = async {
                tokio::time::sleep(ICMP_HEAD_START).await;
                tcp_any(ip, ports, timings).await
            };
            tokio::pin!(icmp, tcp);
            let found = tokio::select! {
                Some(found) = &mut icmp => Some(found),
                Some(found) = &mut tcp => Some(found),
                else => None,
            };
            (ip, found)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    // Silent IPv4 addresses the kernel resolved (ARP complete), from the namespace's own
    // `/proc/net/arp`, read once: our probes made the kernel ask, and an answer proves the
    // host is on the link.
    if found.iter().any(|(ip, f)| f.is_none() && ip.is_ipv4()) {
        let table = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
        let neighbours = complete_neighbours(&table);
        for (ip, f) in &mut found {
            if f.is_none()
                && let IpAddr::V4(v4) = ip
                && neighbours.contains(v4)
            {
                *f = Some(Found {
                    discovery: Discovery {
                        method: DiscoveryMethod::Arp,
                        rtt_ms: None,
                    },
                    ttl: None,
                });
            }
        }
    }
    found
}

/// The addresses `/proc/net/arp` lists with a link-layer address (flag ATF_COM, 0x2).
fn complete_neighbours(table: &str) -> std::collections::HashSet<std::net::Ipv4Addr> {
    const ATF_COM: u32 = 0x2;
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (addr, _hw_type, flags) = (fields.next()?, fields.next()?, fields.next()?);
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            (flags & ATF_COM != 0).then(|| addr.parse().ok()).flatten()
        })
        .collect()
}

async fn icmp(pingers: &Pingers, ip: IpAddr, timings: &Timings, retries: u32) -> Option<Found> {
    let client = if ip.is_ipv4() {
        pingers.v4.as_ref()
    } else {
        pingers.v6.as_ref()
    }?;
    // One pinger per attempt, and every attempt stays open to its answer until the last
    // one gives up: a reply that is merely slower than the learnt timeout still counts.
    // Our own deadline (`within`) decides; surge-ping's is only a backstop.
    let ident = ping_identifier();
    let mut pingers = Vec::new();
    for _ in 0..=retries {
        let mut pinger = client.pinger(ip, ident).await;
        pinger.timeout(Duration::from_secs(60));
        pingers.push(pinger);
    }
    let mut pending = FuturesUnordered::new();
    for (seq, pinger) in pingers.iter_mut().enumerate() {
        pending.push(pinger.ping(PingSequence(seq as u16), &PAYLOAD));
        let first_answer = async {
            while let Some(answer) = pending.next().await {
                if let Ok(answer) = answer {
                    return Some(answer);
                }
            }
            None
        };
        if let Some(Some((reply, rtt))) = within(timings, ip, first_answer).await {
            timings.sample(ip, rtt);
            let ttl = match reply {
                IcmpPacket::V4(p) => p.get_ttl(),
                IcmpPacket::V6(_) => None,
            };
            return Some(Found {
                discovery: Discovery {
                    method: DiscoveryMethod::Icmp,
                    rtt_ms: Some(millis(rtt)),
                },
                ttl,
            });
        }
    }
    None
}

/// The first discovery port that answers (handshake or reset), tried together.
async fn tcp_any(ip: IpAddr, ports: &[u16], timings: &Timings) -> Option<Found> {
    let mut attempts = stream::iter(ports.iter().copied())
        .map(|port| async move {
            let started = Instant::now();
            match tcp::probe(SocketAddr::new(ip, port), timings, 0).await {
                Ok(Outcome::Open(_) | Outcome::Closed) => Some(started.elapsed()),
                _ => None,
            }
        })
        .buffer_unordered(ports.len().max(1));
    while let Some(answer) = attempts.next().await {
        if let Some(rtt) = answer {
            return Some(Found {
                discovery: Discovery {
                    method: DiscoveryMethod::Tcp,
                    rtt_ms: Some(millis(rtt)),
                },
                ttl: None,
            });
        }
    }
    None
}

/// A random echo identifier, so concurrent pingers (ours and others') do not take each
/// other's replies. Not a secret: the OS random source without a CSPRNG's start-up cost.
pub fn ping_identifier() -> PingIdentifier {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    PingIdentifier(u16::from_le_bytes([bytes[0], bytes[1]]))
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
            &Pingers::open(),
            &["127.0.0.1".parse().unwrap()],
            DEFAULT_PORTS,
            &Timing::new(Duration::from_millis(100), Duration::from_secs(1)),
            0,
            4,
        )
        .await;
        let found = found[0].1.as_ref().expect("127.0.0.1 is up");
        assert_eq!(found.discovery.method, DiscoveryMethod::Icmp);
        assert!(found.discovery.rtt_ms.is_some_and(|rtt| rtt >= 0.0));
        assert_eq!(
            found.ttl,
            Some(64),
            "Linux starts at 64 and loopback has no hop"
        );
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
            &Timings::new(
                &Timing::new(Duration::from_secs(1), Duration::from_secs(1)),
                [],
            ),
        )
        .await;
        assert_eq!(
            found.map(|f| f.discovery.method),
            Some(DiscoveryMethod::Tcp)
        );
    }

    #[test]
    fn reads_complete_neighbours_only() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device
10.99.0.2        0x1         0x2         b2:44:43:b7:a5:6b     *        xa
10.99.0.3        0x1         0x0         00:00:00:00:00:00     *        xa
";
        let complete = complete_neighbours(table);
        assert_eq!(
            complete.into_iter().collect::<Vec<_>>(),
            ["10.99.0.2".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert!(complete_neighbours("garbage\n1 2\nx y z\n").is_empty());
    }
}
