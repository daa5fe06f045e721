use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nester::config::{self, Config};
use nester::datadir::DataDir;
use nester::server::{Listeners, Server};
use nester::{commands, demo, pki};

/// Seahawks nester: receives signed reports from harvesters and serves the dashboard and API.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a complete local demo: nester, demo services and a harvester on loopback.
    Demo {
        /// Keep the demo's data here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Seconds between the demo harvester's reports.
        #[arg(long, default_value_t = 5)]
        interval_secs: u64,
    },
    /// Create a data directory: CA, server certificates, database.
    Init {
        #[arg(long, env = "NESTER_DATA_DIR")]
        data_dir: PathBuf,
        /// Extra DNS name or IP address for the server certificates (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Run the ingest and web listeners.
    Serve {
        #[arg(long, short, default_value = "/etc/seahawks/nester.toml")]
        config: PathBuf,
    },
    /// Write a probe key and certificate for a harvester (stopgap until enrollment).
    IssueCert {
        #[arg(long, env = "NESTER_DATA_DIR")]
        data_dir: PathBuf,
        /// Probe id; a new one is generated when absent.
        #[arg(long)]
        probe_id: Option<uuid::Uuid>,
        /// The harvester's state directory to write into.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = pki::PROBE_VALIDITY.whole_days())]
        days: i64,
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
        Command::Demo {
            data_dir,
            interval_secs,
        } => {
            anyhow::ensure!(interval_secs >= 1, "--interval-secs must be at least 1");
            demo::run(
                demo::DemoOptions {
                    data_dir,
                    interval_secs,
                },
                nester::shutdown_signal(),
            )
            .await?;
        }
        Command::Init { data_dir, names } => {
            commands::init(&DataDir::new(&data_dir), &names)?;
            println!("initialised {}", data_dir.display());
            println!(
                "CA certificate: {}",
                DataDir::new(&data_dir).pki("ca.pem").display()
            );
        }
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            let server = Server::open(&config)?;
            let listeners = Listeners::bind(&config).await?;
            println!("dashboard: https://{}/", listeners.web_addr());
            println!("ingest: {}", listeners.ingest_addr());
            server.run(listeners, nester::shutdown_signal()).await;
        }
        Command::IssueCert {
            data_dir,
            probe_id,
            out,
            days,
        } => {
            anyhow::ensure!(
                (1..=397).contains(&days),
                "--days must be between 1 and 397"
            );
            let probe_id = probe_id.unwrap_or_else(uuid::Uuid::new_v4);
            commands::issue_cert(
                &DataDir::new(&data_dir),
                probe_id,
                &out,
                time::Duration::days(days),
            )
            .with_context(|| format!("cannot issue a certificate into {}", out.display()))?;
            println!("probe id: {probe_id}");
            println!("state dir: {}", out.display());
        }
        Command::DefaultConfig => print!("{}", config::EXAMPLE),
    }
    Ok(())
}
