//! Synthetic reports: a site's network as a list of hosts that tests and benchmarks change
//! between reports (a port opens, a host leaves), turned into schema-valid reports at any
//! time, past included. What the nester makes of them is what the tests check.

use std::net::IpAddr;

use shared::report::{
    Host, HostState, OsFamily, OsGuess, Port, PortState, Protocol, Report, SCHEMA_VERSION,
    ScanParameters, WanMeasurement, WanMethod,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// One host of a simulated site.
#[derive(Debug, Clone)]
pub struct SimHost {
    pub address: IpAddr,
    pub hostname: Option<String>,
    pub up: bool,
    pub family: OsFamily,
    /// Open TCP ports and their banners.
    pub open: Vec<(u16, Option<String>)>,
}

impl SimHost {
    pub fn new(address: &str, hostname: Option<&str>, open: &[(u16, Option<&str>)]) -> Self {
        Self {
            address: address.parse().expect("a literal address"),
            hostname: hostname.map(String::from),
            up: true,
            family: OsFamily::Linux,
            open: open
                .iter()
                .map(|(p, b)| (*p, b.map(String::from)))
                .collect(),
        }
    }

    pub fn open_port(&mut self, port: u16, banner: Option<&str>) {
        if !self.open.iter().any(|(p, _)| *p == port) {
            self.open.push((port, banner.map(String::from)));
            self.open.sort_by_key(|(p, _)| *p);
        }
    }

    pub fn close_port(&mut self, port: u16) {
        self.open.retain(|(p, _)| *p != port);
    }
}

/// A simulated probe: its identity, its network, and its reports' sequence.
#[derive(Debug, Clone)]
pub struct SimProbe {
    pub probe_id: Uuid,
    pub site: String,
    pub interval_s: u64,
    pub sequence: u64,
    pub hosts: Vec<SimHost>,
    /// Ports every host is scanned on (open ones are in `SimHost::open`, the rest closed).
    pub scanned: Vec<u16>,
}

impl SimProbe {
    pub fn new(probe_id: Uuid, site: &str, hosts: Vec<SimHost>) -> Self {
        Self {
            probe_id,
            site: site.into(),
            interval_s: 300,
            sequence: 0,
            hosts,
            scanned: vec![22, 80, 443, 3389, 8080],
        }
    }

    pub fn host_mut(&mut self, address: &str) -> &mut SimHost {
        let address: IpAddr = address.parse().expect("a literal address");
        self.hosts
            .iter_mut()
            .find(|h| h.address == address)
            .expect("a host of this probe")
    }

    /// The next report, as generated at `at`, with these WAN measurements.
    pub fn report(&mut self, at: OffsetDateTime, wan: Vec<WanMeasurement>) -> Report {
        self.sequence += 1;
        let mut hosts: Vec<Host> = self.hosts.iter().map(|h| self.host(h)).collect();
        hosts.sort_by_key(|h| h.address);
        Report {
            schema_version: SCHEMA_VERSION,
            report_id: Uuid::now_v7(),
            probe_id: self.probe_id,
            site: self.site.clone(),
            harvester_version: "0.1.0-sim".into(),
            sequence: self.sequence,
            unsent_reports: 0,
            generated_at: at,
            interval_s: self.interval_s,
            scan: ScanParameters {
                targets: vec!["10.0.0.0/24".into()],
                ports: self
                    .scanned
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                started_at: at - time::Duration::seconds(2),
                finished_at: at,
                concurrency: 256,
                min_timeout_ms: 100,
                max_timeout_ms: 1000,
                retries: 1,
                rate: 0,
                discovery: true,
            },
            hosts_up: self.hosts.iter().filter(|h| h.up).count() as u32,
            hosts,
            wan,
        }
    }

    fn host(&self, h: &SimHost) -> Host {
        if !h.up {
            return Host {
                address: h.address,
                hostname: None,
                state: HostState::Down,
                discovery: None,
                os: OsGuess {
                    family: OsFamily::Unknown,
                    confidence: 0,
                    evidence: Vec::new(),
                },
                ports: Vec::new(),
            };
        }
        let mut ports: Vec<u16> = self.scanned.clone();
        ports.extend(h.open.iter().map(|(p, _)| *p));
        ports.sort_unstable();
        ports.dedup();
        Host {
            address: h.address,
            hostname: h.hostname.clone(),
            state: HostState::Up,
            discovery: None,
            os: OsGuess {
                family: h.family,
                confidence: 80,
                evidence: vec!["ICMP reply TTL 64".into()],
            },
            ports: ports
                .into_iter()
                .map(|port| {
                    let open = h.open.iter().find(|(p, _)| *p == port);
                    Port {
                        port,
                        protocol: Protocol::Tcp,
                        state: if open.is_some() {
                            PortState::Open
                        } else {
                            PortState::Closed
                        },
                        banner: open.and_then(|(_, b)| b.clone()),
                    }
                })
                .collect(),
        }
    }
}

/// A WAN measurement of `sent` probes to `target`; `None` latency when all were lost.
pub fn wan(target: &str, sent: u32, received: u32, rtt: Option<(f64, f64, f64)>) -> WanMeasurement {
    WanMeasurement {
        target: target.into(),
        method: WanMethod::Icmp,
        sent,
        received,
        min_ms: rtt.map(|r| r.0),
        median_ms: rtt.map(|r| r.1),
        avg_ms: rtt.map(|r| r.1),
        max_ms: rtt.map(|r| r.2),
        jitter_ms: rtt.map(|r| (r.2 - r.0) / 4.0),
        loss_pct: if sent == 0 {
            100.0
        } else {
            100.0 * f64::from(sent - received) / f64::from(sent)
        },
        note: None,
    }
}

/// A small deterministic generator (xorshift64*), so a seeded run is repeatable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A plausible site network: `n` hosts in 10.`net`.0.0/16 with names and a few services.
pub fn site_hosts(net: u8, n: u16, rng: &mut Rng) -> Vec<SimHost> {
    const SERVICES: &[(u16, Option<&str>)] = &[
        (22, Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")),
        (80, Some("HTTP/1.1 200 OK Server: nginx/1.22.1")),
        (443, None),
        (3389, None),
        (8080, Some("HTTP/1.1 401 Unauthorized Server: Jetty(9.4)")),
    ];
    (1..=n)
        .map(|i| {
            let address = format!("10.{net}.{}.{}", i / 250, i % 250 + 1);
            let name = format!("host-{i}.site{net}.example.net");
            let open: Vec<(u16, Option<&str>)> = SERVICES
                .iter()
                .filter(|_| rng.below(3) == 0)
                .copied()
                .collect();
            SimHost::new(&address, Some(&name), &open)
        })
        .collect()
}
