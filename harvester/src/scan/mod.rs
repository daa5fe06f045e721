//! The scan engine: expand targets, find who is up, connect-scan every (address, port) pair
//! concurrently under per-host adaptive timeouts, read banners, name hosts and guess their
//! systems; hosts come out in address order, ports in port order.

pub mod banner;
pub mod discovery;
pub mod os;
pub mod ports;
pub mod progress;
pub mod rdns;
pub mod targets;
pub mod tcp;
pub mod timing;
mod top_ports;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::Deserialize;
use shared::report::{Host, HostState, OsGuess, Port, PortState, Protocol, ScanParameters};
use time::OffsetDateTime;

pub use ports::PortSpec;
pub use progress::Progress;
pub use rdns::ReverseDns;
use timing::{Timing, Timings};

/// How hard and how fast to scan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanOptions {
    /// Connect attempts in flight at once.
    pub concurrency: usize,
    /// Floor of the adaptive connect timeout.
    pub min_timeout_ms: u64,
    /// Ceiling of the adaptive connect timeout, and the timeout before a host has answered.
    pub max_timeout_ms: u64,
    /// Extra attempts for an unanswered port before it is `filtered`.
    pub retries: u32,
    /// How long to wait for an open port's banner; 0 reads no banners.
    pub banner_timeout_ms: u64,
    /// Most connection attempts per second, all targets together; 0 for no cap.
    pub rate: u32,
    /// Find live hosts first and scan only those (like nmap). Off: scan every address
    /// (like nmap `-Pn`).
    pub discovery: bool,
    /// Ports tried for TCP discovery when ICMP gets no answer.
    pub discovery_ports: Vec<u16>,
    /// Name live hosts by reverse DNS.
    pub reverse_dns: bool,
    /// How long one reverse lookup may take.
    pub dns_timeout_ms: u64,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: 256,
            min_timeout_ms: 100,
            max_timeout_ms: 1000,
            retries: 1,
            banner_timeout_ms: 500,
            rate: 0,
            discovery: true,
            discovery_ports: discovery::DEFAULT_PORTS.to_vec(),
            reverse_dns: true,
            dns_timeout_ms: 2000,
        }
    }
}

impl ScanOptions {
    fn timing(&self) -> Timing {
        Timing::new(
            Duration::from_millis(self.min_timeout_ms),
            Duration::from_millis(self.max_timeout_ms),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Targets(#[from] targets::TargetError),
    #[error("cannot probe {addr}: {source} (a local limit, not an answer from the target)")]
    Local {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("concurrency must be at least 1")]
    NoConcurrency,
    #[error("the connect timeout must be at least 1 ms")]
    NoTimeout,
}

/// What one scan found.
#[derive(Debug, Clone)]
pub struct ScanResult {
    pub parameters: ScanParameters,
    pub hosts: Vec<Host>,
}

/// What outlives one scan: the reverse-DNS cache and the ICMP sockets (the daemon keeps
/// both between cycles), and how progress is shown.
pub struct Session {
    pub rdns: ReverseDns,
    pub progress: Progress,
    /// Opened at the first discovery, inside the runtime.
    pingers: std::sync::OnceLock<discovery::Pingers>,
}

impl Session {
    pub fn new(progress: Progress) -> Self {
        Self {
            rdns: ReverseDns::default(),
            progress,
            pingers: std::sync::OnceLock::new(),
        }
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new(Progress::hidden())
    }
}

/// Scans `targets` on `ports`; with a `scope`, refuses (before any probe) a target that
/// reaches outside it.
pub async fn scan(
    targets: &[String],
    scope: Option<&[ipnet::IpNet]>,
    ports: &PortSpec,
    options: &ScanOptions,
    session: &Session,
) -> Result<ScanResult, ScanError> {
    if options.concurrency == 0 {
        return Err(ScanError::NoConcurrency);
    }
    if options.max_timeout_ms == 0 {
        return Err(ScanError::NoTimeout);
    }
    let progress = &session.progress;
    let started_at = OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    let addresses = targets::expand(targets, scope).await?;
    let all: Vec<IpAddr> = addresses.keys().copied().collect();
    let mut discovered = discover(&all, options, session).await;
    tracing::debug!(addresses = all.len(), elapsed = ?clock.elapsed(), "discovery done");
    let ips: Vec<IpAddr> = all
        .iter()
        .copied()
        .filter(|ip| !options.discovery || discovered.get(ip).is_some_and(Option::is_some))
        .collect();
    let (mut scanned, unreachable) =
        probe_ports(&ips, &discovered, ports, options, progress).await?;
    tracing::debug!(hosts = ips.len(), elapsed = ?clock.elapsed(), "ports done");

    // Found by discovery, or (discovery off) a handshake or reset on any port.
    let up: HashSet<IpAddr> = all
        .into_iter()
        .filter(|ip| {
            discovered.get(ip).is_some_and(Option::is_some)
                || scanned
                    .get(ip)
                    .is_some_and(|ports| ports.iter().any(|p| p.state != PortState::Filtered))
        })
        .collect();
    let names = name(&addresses, &up, options, session).await;
    progress.finish();
    tracing::debug!(elapsed = ?clock.elapsed(), "names done");

    let hosts = addresses
        .into_iter()
        .map(|(address, hostname)| {
            let up = up.contains(&address);
            let mut ports = scanned.remove(&address).unwrap_or_default();
            ports.sort_unstable_by_key(|p| p.port);
            // Nothing answered but the path, saying the host cannot be reached: its ports
            // were never asked, so none is reported.
            if !up && unreachable.contains(&address) {
                ports.clear();
            }
            let hostname = hostname.or_else(|| names.get(&address).cloned().flatten());
            host(
                address,
                hostname,
                up,
                discovered.remove(&address).flatten(),
                ports,
            )
        })
        .collect();
    let parameters = ScanParameters {
        targets: targets.to_vec(),
        ports: ports.to_string(),
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        concurrency: u32::try_from(options.concurrency).unwrap_or(u32::MAX),
        min_timeout_ms: options.min_timeout_ms,
        max_timeout_ms: options.max_timeout_ms,
        retries: options.retries,
        rate: options.rate,
        discovery: options.discovery,
    };
    Ok(ScanResult { parameters, hosts })
}

/// Who is there: found by ICMP, TCP or ARP (`None` for an address nobody answered for), or
/// nothing known of anyone when discovery is off.
async fn discover(
    all: &[IpAddr],
    options: &ScanOptions,
    session: &Session,
) -> BTreeMap<IpAddr, Option<discovery::Found>> {
    if !options.discovery {
        return BTreeMap::new();
    }
    session.progress.discovering(all.len());
    let pingers = session.pingers.get_or_init(discovery::Pingers::open);
    discovery::discover(
        pingers,
        all,
        &options.discovery_ports,
        &options.timing(),
        options.retries,
        options.concurrency,
    )
    .await
    .into_iter()
    .collect()
}

/// Every port of every host in `ips`, as many at once as `concurrency`, under the rate cap:
/// each host's ports, and the hosts whose only answers said they cannot be reached.
async fn probe_ports(
    ips: &[IpAddr],
    discovered: &BTreeMap<IpAddr, Option<discovery::Found>>,
    ports: &PortSpec,
    options: &ScanOptions,
    progress: &Progress,
) -> Result<(BTreeMap<IpAddr, Vec<Port>>, HashSet<IpAddr>), ScanError> {
    let banner_wait = Duration::from_millis(options.banner_timeout_ms);
    // Evenly spaced, no bursts: a cap that a franchise network can rely on.
    let limiter = std::num::NonZeroU32::new(options.rate).map(|rate| {
        governor::RateLimiter::direct(
            governor::Quota::per_second(rate).allow_burst(std::num::NonZeroU32::MIN),
        )
    });
    let limiter = &limiter;
    // Each host's timeout follows its own round trips, seeded by its discovery answer.
    let timings = Timings::new(&options.timing(), ips.iter().copied());
    for (ip, found) in discovered {
        if let Some(rtt) = found.as_ref().and_then(|f| f.discovery.rtt_ms) {
            timings.sample(*ip, Duration::from_secs_f64(rtt / 1000.0));
        }
    }
    let timings = &timings;
    // Port by port across all hosts, as nmap scans a host group: a host that drops
    // everything spreads its waits over the whole scan instead of piling them up at the end.
    let pairs = ports
        .ports()
        .iter()
        .flat_map(|&port| ips.iter().map(move |&ip| SocketAddr::new(ip, port)));
    progress.scanning(ips.len() * ports.ports().len(), ips.len());
    let mut results = stream::iter(pairs)
        .map(|addr| async move {
            if let Some(limiter) = limiter {
                limiter.until_ready().await;
            }
            let outcome = tcp::probe(addr, timings, options.retries)
                .await
                .map_err(|source| ScanError::Local { addr, source })?;
            let state = outcome.state();
            let unreachable = matches!(outcome, tcp::Outcome::Unreachable);
            let banner = match outcome {
                // Boxed: only open ports need its buffer, and every probe's future would
                // otherwise carry it (65,535 of them in a full scan).
                tcp::Outcome::Open(stream) if banner_wait > Duration::ZERO => {
                    Box::pin(banner::grab(stream, addr.port(), banner_wait)).await
                }
                _ => None,
            };
            Ok::<_, ScanError>((addr, state, banner, unreachable))
        })
        .buffer_unordered(options.concurrency);

    let mut scanned: BTreeMap<IpAddr, Vec<Port>> = BTreeMap::new();
    let mut unreachable: HashSet<IpAddr> = HashSet::new();
    let mut hosts_done = 0;
    while let Some(result) = results.next().await {
        let (addr, state, banner, no_way) = result?;
        if no_way {
            unreachable.insert(addr.ip());
        }
        progress.port_done();
        let host = scanned.entry(addr.ip()).or_default();
        host.push(Port {
            port: addr.port(),
            protocol: Protocol::Tcp,
            state,
            banner,
        });
        if host.len() == ports.ports().len() {
            hosts_done += 1;
            progress.hosts_done(hosts_done, ips.len());
        }
    }
    Ok((scanned, unreachable))
}

/// Names the hosts that are up and have no name yet, by reverse DNS (when asked to): a -Pn
/// sweep of empty addresses asks DNS nothing.
async fn name(
    addresses: &BTreeMap<IpAddr, Option<String>>,
    up: &HashSet<IpAddr>,
    options: &ScanOptions,
    session: &Session,
) -> HashMap<IpAddr, Option<String>> {
    if !options.reverse_dns {
        return HashMap::new();
    }
    let unnamed: Vec<IpAddr> = addresses
        .iter()
        .filter(|(ip, name)| name.is_none() && up.contains(ip))
        .map(|(ip, _)| *ip)
        .collect();
    let timeout = Duration::from_millis(options.dns_timeout_ms);
    let names = session.rdns.lookup_all(&unnamed, timeout).await;
    unnamed.into_iter().zip(names).collect()
}

/// One host of the report, its ports in order, with an OS guess from the evidence alone.
fn host(
    address: IpAddr,
    hostname: Option<String>,
    up: bool,
    found: Option<discovery::Found>,
    ports: Vec<Port>,
) -> Host {
    let ttl = found.as_ref().and_then(|f| f.ttl);
    let banners = ports
        .iter()
        .filter_map(|p| Some((p.port, p.banner.as_deref()?)));
    let os = if up {
        os::guess(ttl, banners)
    } else {
        OsGuess::unknown()
    };
    Host {
        address,
        hostname,
        state: if up { HostState::Up } else { HostState::Down },
        discovery: found.map(|f| f.discovery),
        os,
        ports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finds_open_and_closed_ports_on_loopback() {
        let listeners: Vec<_> = futures_util::future::join_all(
            (0..3).map(|_| tokio::net::TcpListener::bind("127.0.0.1:0")),
        )
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
        let open: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec: PortSpec = format!("{},{},{},{closed}", open[0], open[1], open[2])
            .parse()
            .unwrap();

        let result = scan(
            &["127.0.0.1".into()],
            None,
            &spec,
            &ScanOptions::default(),
            &Session::default(),
        )
        .await
        .unwrap();

        assert_eq!(result.hosts.len(), 1);
        let host = &result.hosts[0];
        assert_eq!(host.state, HostState::Up);
        let mut expected: Vec<_> = open.iter().map(|&p| (p, PortState::Open)).collect();
        expected.push((closed, PortState::Closed));
        expected.sort();
        let got: Vec<_> = host.ports.iter().map(|p| (p.port, p.state)).collect();
        assert_eq!(got, expected);
        assert_eq!(result.parameters.ports, spec.to_string());
    }

    /// A lower bound only, which the cap guarantees: 100 attempts at 200/s take 0.5 s.
    #[tokio::test]
    async fn the_rate_cap_spaces_attempts() {
        let spec: PortSpec = "40000-40099".parse().unwrap();
        let options = ScanOptions {
            rate: 200,
            banner_timeout_ms: 0,
            ..ScanOptions::default()
        };
        let started = std::time::Instant::now();
        let result = scan(
            &["127.0.0.1".into()],
            None,
            &spec,
            &options,
            &Session::default(),
        )
        .await
        .unwrap();
        assert_eq!(result.hosts[0].ports.len(), 100);
        assert!(
            started.elapsed() >= Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
    }
}
