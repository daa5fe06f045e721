//! `harvester scan` and `harvester wan`: they work alone, like nmap and ping, with no nester.

use crate::scan::{self, PortSpec, ScanOptions};
use crate::wan::WanOptions;
use crate::{report, table};

#[derive(clap::Args)]
pub struct ScanArgs {
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
}

pub async fn scan(args: ScanArgs) -> anyhow::Result<()> {
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let options = ScanOptions {
        concurrency: args.concurrency,
        min_timeout_ms: millis(args.min_timeout),
        max_timeout_ms: millis(args.timeout),
        retries: args.retries,
        banner_timeout_ms: args.banner_timeout_ms,
        rate: args.rate,
        discovery: !args.skip_discovery,
        reverse_dns: !args.no_dns,
        ..ScanOptions::default()
    };
    let session = scan::Session::new(scan::Progress::new(true));
    let result = scan::scan(&args.targets, None, &args.ports, &options, &session).await?;
    if args.json {
        let report = report::build(
            uuid::Uuid::nil(),
            &args.site,
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
    Ok(())
}

#[derive(clap::Args)]
pub struct WanArgs {
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
}

pub async fn wan(args: WanArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=100).contains(&args.probes),
        "--probes must be between 1 and 100"
    );
    let options = WanOptions {
        targets: args.targets,
        probes: args.probes,
        tcp_port: args.tcp_port,
        timeout_ms: args.timeout_ms,
        icmp: !args.no_icmp,
        ..WanOptions::default()
    };
    let measurements = crate::wan::measure_all(&options).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&measurements)?);
    } else {
        print!("{}", table::wan(&measurements));
    }
    Ok(())
}
