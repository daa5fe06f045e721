use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use harvester::scan::{self, PortSpec, ScanOptions};
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
    Scan {
        /// Addresses, CIDR ranges or host names.
        #[arg(required = true)]
        targets: Vec<String>,
        /// Ports, e.g. `22,80,443,8000-8100`.
        #[arg(long, short)]
        ports: PortSpec,
        /// Print the report JSON (the unsigned payload) instead of a table.
        #[arg(long)]
        json: bool,
        /// Site label written into the JSON report.
        #[arg(long, default_value = "adhoc")]
        site: String,
        #[arg(long, default_value_t = ScanOptions::default().concurrency)]
        concurrency: usize,
        #[arg(long, default_value_t = ScanOptions::default().timeout_ms)]
        timeout_ms: u64,
        #[arg(long, default_value_t = ScanOptions::default().retries)]
        retries: u32,
    },
    /// Run the daemon: scan on an interval and push signed reports to the nester.
    Run {
        #[arg(long, short, default_value = "/etc/seahawks/harvester.toml")]
        config: PathBuf,
    },
    /// Print an annotated example configuration.
    DefaultConfig,
}

#[tokio::main]
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
            timeout_ms,
            retries,
        } => {
            let options = ScanOptions {
                concurrency,
                timeout_ms,
                retries,
            };
            let result = scan::scan(&targets, &ports, &options).await?;
            if json {
                let report = report::build(uuid::Uuid::nil(), &site, 0, result);
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", table::render(&result.hosts));
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
        Command::DefaultConfig => print!("{}", config::EXAMPLE),
    }
    Ok(())
}
