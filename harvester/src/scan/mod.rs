//! The scan engine: expand targets, connect-scan every (address, port) pair concurrently,
//! assemble hosts in address and port order.

pub mod banner;
pub mod discovery;
pub mod ports;
pub mod targets;
pub mod tcp;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde::Deserialize;
use shared::report::{Discovery, Host, HostState, Port, PortState, Protocol, ScanParameters};
use time::OffsetDateTime;

pub use ports::PortSpec;

/// How hard and how fast to scan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanOptions {
    /// Connect attempts in flight at once.
    pub concurrency: usize,
    /// How long one connect attempt may take before it counts as unanswered.
    pub timeout_ms: u64,
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
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: 256,
            timeout_ms: 1000,
            retries: 1,
            banner_timeout_ms: 500,
            rate: 0,
            discovery: true,
            discovery_ports: discovery::DEFAULT_PORTS.to_vec(),
        }
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
}

/// What one scan found.
#[derive(Debug, Clone)]
pub struct ScanResult {
    pub parameters: ScanParameters,
    pub hosts: Vec<Host>,
}

/// Scans `targets` on `ports`; with a `scope`, refuses (before any probe) a target that
/// reaches outside it.
pub async fn scan(
    targets: &[String],
    scope: Option<&[ipnet::IpNet]>,
    ports: &PortSpec,
    options: &ScanOptions,
) -> Result<ScanResult, ScanError> {
    if options.concurrency == 0 {
        return Err(ScanError::NoConcurrency);
    }
    let started_at = OffsetDateTime::now_utc();
    let addresses = targets::expand(targets, scope).await?;
    let timeout = Duration::from_millis(options.timeout_ms);
    let banner_wait = Duration::from_millis(options.banner_timeout_ms);
    // Evenly spaced, no bursts: a cap that a franchise network can rely on.
    let limiter = std::num::NonZeroU32::new(options.rate).map(|rate| {
        governor::RateLimiter::direct(
            governor::Quota::per_second(rate).allow_burst(std::num::NonZeroU32::MIN),
        )
    });
    let limiter = &limiter;
    let all: Vec<IpAddr> = addresses.keys().copied().collect();
    // Who is there: found by ICMP or TCP, or everyone when discovery is off.
    let mut discovered: BTreeMap<IpAddr, Option<Discovery>> = if options.discovery {
        let ports = &options.discovery_ports;
        discovery::discover(&all, ports, timeout, options.retries, options.concurrency)
            .await
            .into_iter()
            .collect()
    } else {
        BTreeMap::new()
    };
    let ips: Vec<IpAddr> = all
        .iter()
        .copied()
        .filter(|ip| !options.discovery || discovered.get(ip).is_some_and(Option::is_some))
        .collect();
    let pairs = ips.iter().flat_map(|&ip| {
        ports
            .ports()
            .iter()
            .map(move |&port| SocketAddr::new(ip, port))
    });
    let mut results = stream::iter(pairs)
        .map(|addr| async move {
            if let Some(limiter) = limiter {
                limiter.until_ready().await;
            }
            let outcome = tcp::probe(addr, timeout, options.retries)
                .await
                .map_err(|source| ScanError::Local { addr, source })?;
            let state = outcome.state();
            let banner = match outcome {
                tcp::Outcome::Open(stream) if banner_wait > Duration::ZERO => {
                    banner::grab(stream, addr.port(), banner_wait).await
                }
                _ => None,
            };
            Ok::<_, ScanError>((addr, state, banner))
        })
        .buffer_unordered(options.concurrency);

    let mut found: BTreeMap<IpAddr, Vec<Port>> = BTreeMap::new();
    while let Some(result) = results.next().await {
        let (addr, state, banner) = result?;
        found.entry(addr.ip()).or_default().push(Port {
            port: addr.port(),
            protocol: Protocol::Tcp,
            state,
            banner,
        });
    }

    let hosts = addresses
        .into_iter()
        .map(|(address, hostname)| {
            let mut ports = found.remove(&address).unwrap_or_default();
            ports.sort_unstable_by_key(|p| p.port);
            let discovery = discovered.remove(&address).flatten();
            // Found by discovery, or (discovery off) a handshake or reset on any port.
            let up = discovery.is_some() || ports.iter().any(|p| p.state != PortState::Filtered);
            let state = if up { HostState::Up } else { HostState::Down };
            Host {
                address,
                hostname,
                state,
                discovery,
                ports,
            }
        })
        .collect();
    let parameters = ScanParameters {
        targets: targets.to_vec(),
        ports: ports.to_string(),
        started_at,
        finished_at: OffsetDateTime::now_utc(),
    };
    Ok(ScanResult { parameters, hosts })
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

        let result = scan(&["127.0.0.1".into()], None, &spec, &ScanOptions::default())
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
        let result = scan(&["127.0.0.1".into()], None, &spec, &options)
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
