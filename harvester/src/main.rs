use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use harvester::scan::{self, PortSpec, ScanOptions};
use harvester::wan::WanOptions;
use harvester::{Agent, Config, config, report, table};

/// Seahawks harvester: scans a site's network and reports to the nester.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan now and print the result; needs no nester.
    #[command(
        after_help = "Exit status: 0 when the scan ran, whatever it found; 1 when it could not \
        (a target that does not parse or resolve, a local failure); 2 for a usage error.\n\
        A progress bar is drawn on standard error when it is a terminal."
    )]
    Scan {
        /// Addresses, CIDR ranges or host names.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Ports: lists and ranges (`22,80,8000-8100`), `top100`, `top1000` or `all`.
        #[arg(long, short, default_value = "top1000")]
        ports: PortSpec,
        /// Print the report JSON (the unsigned payload) instead of a table.
        #[arg(long)]
        json: bool,
        /// Site label written into the JSON report.
        #[arg(long, default_value = "adhoc")]
        site: String,
        #[arg(long, default_value_t = ScanOptions::default().concurrency)]
        concurrency: usize,
        /// Connect timeout ceiling (and the timeout before a host has answered), e.g. `1s`;
        /// it adapts to each host's round trips between --min-timeout and this.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Connect timeout floor, e.g. `100ms`.
        #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
        min_timeout: std::time::Duration,
        #[arg(long, default_value_t = ScanOptions::default().retries)]
        retries: u32,
        /// How long to wait for a service banner on open ports; 0 reads none.
        #[arg(long, default_value_t = ScanOptions::default().banner_timeout_ms)]
        banner_timeout_ms: u64,
        /// Most connection attempts per second; 0 for no cap.
        #[arg(long, default_value_t = ScanOptions::default().rate)]
        rate: u32,
        /// Scan every address without checking it is up first (like nmap -Pn).
        #[arg(long, short = 'P')]
        skip_discovery: bool,
        /// Do not name hosts by reverse DNS.
        #[arg(long, short = 'n')]
        no_dns: bool,
    },
    /// Measure WAN latency now: N probes per target, ICMP first, TCP connect as fallback.
    Wan {
        #[arg(required = true)]
        targets: Vec<String>,
        #[arg(long, default_value_t = WanOptions::default().probes)]
        probes: u32,
        /// Port for the TCP fallback (a closed port answers too).
        #[arg(long, default_value_t = WanOptions::default().tcp_port)]
        tcp_port: u16,
        /// How long each probe may wait for its answer.
        #[arg(long, default_value_t = WanOptions::default().timeout_ms)]
        timeout_ms: u64,
        /// Skip ICMP and measure TCP connect times only.
        #[arg(long)]
        no_icmp: bool,
        /// Print the measurements as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join a nester with an enrollment token: makes a key pair here, gets a certificate.
    Enroll {
        /// File holding the token (`-` for standard input). Never pass a token as an argument:
        /// command lines show up in process lists and shell history.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Refused: see --token-file.
        #[arg(long, hide = true)]
        token: Option<String>,
        /// State directory to create; default: the one in --config.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long, short, default_value = "/etc/seahawks/harvester.toml")]
        config: PathBuf,
    },
    /// Show identity, certificate expiry, spool depth and the last upload.
    Status {
        #[arg(long, short, default_value = "/etc/seahawks/harvester.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon: scan on an interval and push signed reports to the nester.
    Run {
        #[arg(long, short, default_value = "/etc/seahawks/harvester.toml")]
        config: PathBuf,
    },
    /// Print an annotated example configuration.
    DefaultConfig,
}

/// One thread: the agent's work is waiting on sockets. Measured on a 2-core machine, a full
/// 65,535-port loopback scan takes 1.15 s on one thread and 1.6 s with two workers, which
/// spend their time waking each other (docs/benchmarks.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Scan {
            targets,
            ports,
            json,
            site,
            concurrency,
            timeout,
            min_timeout,
            retries,
            banner_timeout_ms,
            rate,
            skip_discovery,
            no_dns,
        } => {
            let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            let options = ScanOptions {
                concurrency,
                min_timeout_ms: millis(min_timeout),
                max_timeout_ms: millis(timeout),
                retries,
                banner_timeout_ms,
                rate,
                discovery: !skip_discovery,
                reverse_dns: !no_dns,
                ..ScanOptions::default()
            };
            let session = scan::Session::new(scan::Progress::new(true));
            let result = scan::scan(&targets, None, &ports, &options, &session).await?;
            if json {
                let report = report::build(
                    uuid::Uuid::nil(),
                    &site,
                    0,
                    0,
                    std::time::Duration::ZERO,
                    result,
                    Vec::new(),
                );
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", table::render(&result.hosts));
            }
        }
        Command::Enroll {
            token_file,
            token,
            state_dir,
            config,
        } => {
            if token.is_some() {
                anyhow::bail!(
                    "refusing a token on the command line: it would leak into process lists and shell history. \
                     Put it in a file (--token-file FILE) or pipe it (--token-file -)"
                );
            }
            let token_file = token_file
                .context("give the token with --token-file FILE (or - for standard input)")?;
            let token = if token_file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .context("cannot read the token from standard input")?
            } else {
                std::fs::read_to_string(&token_file)
                    .with_context(|| format!("cannot read {}", token_file.display()))?
            };
            let state_dir = match state_dir {
                Some(dir) => dir,
                None => Config::load(&config)?.state_dir,
            };
            let (probe_id, site) = harvester::enroll::enroll(&token, &state_dir).await?;
            println!("probe id: {probe_id}");
            println!("site: {site}");
            println!("state dir: {}", state_dir.display());
        }
        Command::Status { config, json } => {
            let status = harvester::status::Status::read(&Config::load(&config)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render(time::OffsetDateTime::now_utc()));
            }
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let agent = Agent::new(config).context("cannot start the harvester")?;
            tracing::info!(probe_id = %agent.probe_id(), "harvester running");
            agent
                .run(async {
                    tokio::signal::ctrl_c().await.ok();
                })
                .await;
        }
        Command::Wan {
            targets,
            probes,
            tcp_port,
            timeout_ms,
            no_icmp,
            json,
        } => {
            anyhow::ensure!(
                (1..=100).contains(&probes),
                "--probes must be between 1 and 100"
            );
            let options = WanOptions {
                targets,
                probes,
                tcp_port,
                timeout_ms,
                icmp: !no_icmp,
                ..WanOptions::default()
            };
            let measurements = harvester::wan::measure_all(&options).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&measurements)?);
            } else {
                for m in &measurements {
                    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
                    println!(
                        "{:<24} {:<4} sent {:>3} received {:>3} loss {:>5.1}%  min/median/avg/max/jitter {}/{}/{}/{}/{} ms{}",
                        m.target,
                        format!("{:?}", m.method).to_lowercase(),
                        m.sent,
                        m.received,
                        m.loss_pct,
                        ms(m.min_ms),
                        ms(m.median_ms),
                        ms(m.avg_ms),
                        ms(m.max_ms),
                        ms(m.jitter_ms),
                        m.note
                            .as_ref()
                            .map(|n| format!("  ({n})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Command::DefaultConfig => print!("{}", config::EXAMPLE),
    }
    Ok(())
}
