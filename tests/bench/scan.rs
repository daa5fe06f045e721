//! Scan benchmark: the harvester's engine against nmap's connect scan, in network namespaces
//! this program makes (and removes), runs interleaved, medians and ratios printed.
//!
//!   cargo run --release -p seahawks-tests --bin scan-bench -- [--runs 5] [--only a|b]
//!
//! (a) A full 1-65535 scan of one host on a namespace's loopback: the engine with default
//!     settings, `nmap -sT -T4`, `nmap -sT --min-rate 10000`, and a bare tokio connect loop
//!     (the kernel's limit).
//! (b) A /24 with 20 live hosts, top-1000 ports, some ports and one host silently dropped:
//!     the engine against `nmap -sT -T4`.
//!
//! Every contender runs as its own process inside the namespace (`ip netns exec`), and every
//! result is compared with nmap's: a fast wrong answer does not count. Needs root and nmap.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::{StreamExt, stream};
use harvester::scan::{self, PortSpec, ScanOptions, Session};
use seahawks_tests::netns::{HostSpec, Netns, Site};
use seahawks_tests::nmap;
use shared::report::{HostState, PortState};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    inner: Option<Inner>,
    /// Interleaved runs per contender.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Run one benchmark only.
    #[arg(long)]
    only: Option<String>,
}

/// What the benchmark runs inside a namespace.
#[derive(Subcommand)]
enum Inner {
    /// The harvester's engine, default settings; prints the states as JSON.
    #[command(hide = true)]
    Engine {
        #[arg(long)]
        ports: PortSpec,
        targets: Vec<String>,
    },
    /// Fake services (see `seahawks_tests::services`).
    #[command(hide = true)]
    Services { services: Vec<String> },
    /// A bare tokio connect loop over every port; prints the states as JSON.
    #[command(hide = true)]
    Bare {
        #[arg(long)]
        ports: PortSpec,
        #[arg(long, default_value_t = ScanOptions::default().concurrency)]
        concurrency: usize,
        target: IpAddr,
    },
}

/// Per address: `None` when down, else each port's state (nmap's shape).
type States = BTreeMap<IpAddr, Option<BTreeMap<u16, PortState>>>;

async fn engine(targets: Vec<String>, ports: PortSpec) -> anyhow::Result<States> {
    let result = scan::scan(
        &targets,
        None,
        &ports,
        &ScanOptions::default(),
        &Session::default(),
    )
    .await?;
    Ok(result
        .hosts
        .into_iter()
        .map(|h| {
            let up = h.state == HostState::Up;
            let ports = up.then(|| h.ports.iter().map(|p| (p.port, p.state)).collect());
            (h.address, ports)
        })
        .collect())
}

/// The floor: one connect per port, as many at once as the engine, no timing, no banners.
async fn bare(target: IpAddr, ports: PortSpec, concurrency: usize) -> States {
    let states = stream::iter(ports.ports().iter().copied())
        .map(|port| async move {
            let addr = SocketAddr::new(target, port);
            let state = match tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) if s.local_addr().ok() == Some(addr) => PortState::Closed,
                Ok(Ok(_)) => PortState::Open,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    PortState::Closed
                }
                _ => PortState::Filtered,
            };
            (port, state)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    BTreeMap::from([(target, Some(states))])
}

/// One contender: how to run it, and how to read what it found.
struct Contender {
    name: &'static str,
    nmap: bool,
    command: Box<dyn Fn() -> Command>,
    times: Vec<Duration>,
    last: Option<States>,
}

impl Contender {
    fn run(&mut self) -> anyhow::Result<States> {
        let started = Instant::now();
        let mut states: States = if self.nmap {
            nmap::run((self.command)()).hosts
        } else {
            let out = (self.command)().output()?;
            if !out.status.success() {
                bail!("{}: {}", self.name, String::from_utf8_lossy(&out.stderr));
            }
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).context("contender output")?
        };
        self.times.push(started.elapsed());
        // Compared: the hosts up, and their ports. (nmap also lists a /24's network and
        // broadcast addresses, down; the engine does not scan those.)
        states.retain(|_, ports| ports.is_some());
        Ok(states)
    }

    fn median(&self) -> Duration {
        let mut times = self.times.clone();
        times.sort_unstable();
        times[times.len() / 2]
    }
}

fn contender(
    name: &'static str,
    ns: &Netns,
    program: impl Into<PathBuf>,
    args: &[&str],
) -> Contender {
    let ns = ns.name().to_string();
    let program: PathBuf = program.into();
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    Contender {
        name,
        nmap: program.as_os_str() == "nmap",
        command: Box::new(move || {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns]).arg(&program).args(&args);
            c
        }),
        times: Vec::new(),
        last: None,
    }
}

/// Runs every contender `runs` times, rotating who goes first; checks each result against
/// the first contender's (`nmap -sT -T4`) and prints medians and ratios against the last
/// (the engine).
fn race(title: &str, contenders: &mut [Contender], runs: usize) -> anyhow::Result<()> {
    println!("\n{title}");
    for run in 0..runs {
        for i in 0..contenders.len() {
            let c = &mut contenders[(i + run) % contenders.len()];
            let states = c.run()?;
            eprintln!(
                "  run {}: {:<28} {:>8.3} s",
                run + 1,
                c.name,
                c.times.last().expect("just ran").as_secs_f64()
            );
            // The results are checked once all of this run is in.
            c.last = Some(states);
        }
        let (reference, others) = contenders.split_first().context("no contenders")?;
        let reference = reference.last.as_ref().expect("ran");
        for c in others {
            let states = c.last.as_ref().expect("ran");
            if states != reference {
                bail!(
                    "{} disagrees with nmap -sT -T4: {}",
                    c.name,
                    diff(states, reference)
                );
            }
        }
    }
    let engine = contenders.last().context("no contenders")?.median();
    println!("| contender | median | engine / contender |\n|---|---|---|");
    for c in contenders.iter() {
        println!(
            "| {} | {:.3} s | {:.2}× |",
            c.name,
            c.median().as_secs_f64(),
            engine.as_secs_f64() / c.median().as_secs_f64()
        );
    }
    println!("(all {runs} runs of every contender found exactly nmap's port states)");
    Ok(())
}

fn diff(ours: &States, theirs: &States) -> String {
    let mut out = Vec::new();
    for (ip, theirs_host) in theirs {
        match (ours.get(ip), theirs_host) {
            (None, _) => out.push(format!("{ip} missing")),
            (Some(None), Some(_)) => out.push(format!("{ip} down, nmap: up")),
            (Some(Some(_)), None) => out.push(format!("{ip} up, nmap: down")),
            (Some(Some(a)), Some(b)) => {
                for (port, state) in b {
                    if a.get(port) != Some(state) {
                        out.push(format!("{ip}:{port} {:?}, nmap: {state:?}", a.get(port)));
                    }
                }
            }
            (Some(None), None) => {}
        }
    }
    out.truncate(10);
    out.join("; ")
}

fn loopback(runs: usize, me: &Path) -> anyhow::Result<()> {
    let ns = Netns::new();
    // A few services, so open ports and banners are part of the work.
    let mut server = ns
        .command(me)
        .args([
            "services",
            "22=greet:SSH-2.0-OpenSSH_9.2p1 Debian-2",
            "80=http:nginx",
            "443=greet:hello",
            "8080=http:jetty",
            "50000=greet:hello",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let me = me.to_str().context("path")?;
    let mut contenders = [
        contender(
            "nmap -sT -T4",
            &ns,
            "nmap",
            &["-sT", "-T4", "-n", "-p-", "127.0.0.1"],
        ),
        contender(
            "nmap -sT --min-rate 10000",
            &ns,
            "nmap",
            &["-sT", "--min-rate", "10000", "-n", "-p-", "127.0.0.1"],
        ),
        contender(
            "bare tokio connect loop",
            &ns,
            me,
            &["bare", "--ports", "all", "127.0.0.1"],
        ),
        contender(
            "engine (defaults)",
            &ns,
            me,
            &["engine", "--ports", "all", "127.0.0.1"],
        ),
    ];
    let result = race(
        "(a) 1-65535 on a namespace's loopback",
        &mut contenders,
        runs,
    );
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn sweep(runs: usize, me: &Path) -> anyhow::Result<()> {
    let dropped_ports = "table inet filter {\n chain input {\n type filter hook input priority 0;\n policy accept;\n tcp dport { 3389, 5900, 8080 } drop;\n }\n}\n";
    let dropped_host = "table inet filter {\n chain input {\n type filter hook input priority 0;\n policy drop;\n }\n}\n";
    let specs: Vec<HostSpec> = (10u8..30)
        .map(|octet| HostSpec {
            octet,
            name: None,
            services: vec![
                "22=greet:SSH-2.0-OpenSSH_9.2p1 Debian-2".into(),
                "80=http:nginx".into(),
                format!("{}=greet:hello", 3000 + u16::from(octet % 3)),
            ],
            nft: match octet {
                29 => Some(dropped_host.into()),
                10..=14 => Some(dropped_ports.into()),
                _ => None,
            },
        })
        .collect();
    let site = Site::new("10.66.0", &specs, (me, &["services"]));
    let ns = site.scanner();
    let me = me.to_str().context("path")?;
    let mut contenders = [
        contender(
            "nmap -sT -T4",
            ns,
            "nmap",
            &["-sT", "-T4", "-n", "--top-ports", "1000", "10.66.0.0/24"],
        ),
        contender(
            "engine (defaults)",
            ns,
            me,
            &["engine", "--ports", "top1000", "10.66.0.0/24"],
        ),
    ];
    race(
        "(b) /24, 20 live hosts, top 1000 ports, some ports and one host dropped",
        &mut contenders,
        runs,
    )
}

/// One thread, as the harvester runs (see its `main`): for connect-heavy work a second
/// worker thread only adds wake-ups across cores.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    run().await
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.inner {
        Some(Inner::Engine { ports, targets }) => {
            let states = engine(targets, ports).await?;
            println!("{}", serde_json::to_string(&states)?);
            return Ok(());
        }
        Some(Inner::Bare {
            ports,
            concurrency,
            target,
        }) => {
            println!(
                "{}",
                serde_json::to_string(&bare(target, ports, concurrency).await)?
            );
            return Ok(());
        }
        Some(Inner::Services { services }) => {
            seahawks_tests::services::run(services);
            return Ok(());
        }
        None => {}
    }
    let me = std::env::current_exe()?;
    println!(
        "scan benchmark, {}, {} runs each, interleaved",
        time::OffsetDateTime::now_utc().date(),
        args.runs
    );
    if args.only.as_deref() != Some("b") {
        loopback(args.runs, &me)?;
    }
    if args.only.as_deref() != Some("a") {
        sweep(args.runs, &me)?;
    }
    Ok(())
}
