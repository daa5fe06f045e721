use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nester::config::{self, Config};
use nester::datadir::DataDir;
use nester::server::{Listeners, Server};
use nester::{commands, demo};

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
    /// Enrollment tokens: create, list, revoke.
    Token {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Enrolled probes: list, revoke.
    Probe {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: ProbeCommand,
    },
    /// Print an annotated example configuration.
    DefaultConfig,
}

/// The configuration the administrative commands read (data dir, public ingest address).
#[derive(clap::Args)]
struct AdminConfig {
    #[arg(
        long,
        short,
        default_value = "/etc/seahawks/nester.toml",
        global = true
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it; hand it to the harvester (`harvester enroll --token-file`).
    Create {
        /// Site the enrolled probe belongs to.
        #[arg(long)]
        site: String,
        /// How long the token stays usable, e.g. `30m`, `2h`, `1d`.
        #[arg(long, default_value = "30m")]
        ttl: humantime::Duration,
        /// How many probes may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// List tokens and their state.
    List,
    /// Revoke a token by id.
    Revoke { token_id: String },
}

#[derive(Subcommand)]
enum ProbeCommand {
    /// List enrolled probes.
    List,
    /// Revoke a probe: its next connection is refused.
    Revoke { probe_id: uuid::Uuid },
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
        Command::Token { config, command } => {
            let config = Config::load(&config.config)?;
            let db = nester::db::Db::open(&DataDir::new(&config.data_dir).database())?;
            match command {
                TokenCommand::Create { site, ttl, uses } => {
                    let ttl = time::Duration::try_from(*ttl).context("--ttl is too long")?;
                    let dir = DataDir::new(&config.data_dir);
                    let token = commands::create_token(
                        &db,
                        &dir,
                        config.public_ingest_address(),
                        &site,
                        ttl,
                        uses,
                    )
                    .await?;
                    println!("{token}");
                }
                TokenCommand::List => print!("{}", commands::list_tokens(&db).await?),
                TokenCommand::Revoke { token_id } => commands::revoke_token(&db, &token_id).await?,
            }
        }
        Command::Probe { config, command } => {
            let config = Config::load(&config.config)?;
            let db = nester::db::Db::open(&DataDir::new(&config.data_dir).database())?;
            match command {
                ProbeCommand::List => print!("{}", commands::list_probes(&db).await?),
                ProbeCommand::Revoke { probe_id } => {
                    commands::revoke_probe(&db, probe_id).await?;
                    println!("probe {probe_id} revoked; its next connection will be refused");
                }
            }
        }
        Command::DefaultConfig => print!("{}", config::EXAMPLE),
    }
    Ok(())
}
