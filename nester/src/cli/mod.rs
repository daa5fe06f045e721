//! The `nester` command line: the clap tree, and one file per command family. Each family's
//! file holds its subcommands and the work behind them; this file only routes to them.

pub mod alerts;
pub mod api_token;
pub mod audit;
pub mod backup;
pub mod ban;
pub mod ca;
pub mod certs;
pub mod db;
#[cfg(feature = "demo")]
pub mod demo;
pub mod init;
pub mod probe;
pub mod ssh;
pub mod token;
pub mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::datadir::DataDir;
use crate::db::Db;

/// Seahawks nester: receives signed reports from harvesters and serves the dashboard and API.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a complete local demo: nester, demo services and a harvester on loopback.
    #[cfg(feature = "demo")]
    Demo(demo::Args),
    /// Create a data directory: CA, server certificates, database.
    Init(init::Args),
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
        command: token::Command,
    },
    /// The database: sizes, and retention on demand.
    Db {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: db::Command,
    },
    /// Enrolled probes: list, revoke.
    Probe {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: probe::Command,
    },
    /// Users of the dashboard and the API: add, list, disable, enable, reset-password, set-role,
    /// reset-mfa.
    User {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: user::Command,
    },
    /// API tokens for scripts (`Authorization: Bearer`): create, list, revoke.
    ApiToken {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: api_token::Command,
    },
    /// The audit log: verify its chain, list entries.
    Audit {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: audit::Command,
    },
    /// Bans: list, add, remove.
    Ban {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: ban::Command,
    },
    /// Alerts: list the open ones, test a notification channel.
    Alerts {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: alerts::Command,
    },
    /// Backups: create, verify, restore.
    Backup {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: backup::Command,
    },
    /// The nester's certificates: expiry and renewal.
    Certs {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: certs::Command,
    },
    /// The nester's CA: rotate it, end a rotation, status.
    Ca {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: ca::Command,
    },
    /// The SSH certificate authorities: status, rotate, end a rotation.
    Ssh {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: ssh::Command,
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

impl AdminConfig {
    /// The configuration and the database it names.
    fn open(&self) -> anyhow::Result<(Config, Db)> {
        let config = Config::load(&self.config)?;
        let db = DataDir::new(&config.data_dir).open_database()?;
        Ok((config, db))
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            #[cfg(feature = "demo")]
            Command::Demo(args) => demo::run(args, crate::server::shutdown_signal()).await,
            Command::Init(args) => init::run(args).await,
            Command::Serve { config } => crate::server::serve(&Config::load(&config)?).await,
            Command::Token { config, command } => {
                let (config, db) = config.open()?;
                token::run(command, &config, &db).await
            }
            Command::Db { config, command } => {
                let (config, db) = config.open()?;
                db::run(command, &config, &db).await
            }
            Command::Probe { config, command } => probe::run(command, &config.open()?.1).await,
            Command::User { config, command } => user::run(command, &config.open()?.1).await,
            Command::ApiToken { config, command } => {
                api_token::run(command, &config.open()?.1).await
            }
            Command::Audit { config, command } => {
                let (config, db) = config.open()?;
                audit::run(command, &DataDir::new(&config.data_dir), &db).await
            }
            Command::Ban { config, command } => {
                let (config, db) = config.open()?;
                ban::run(command, &config, &db).await
            }
            Command::Alerts { config, command } => {
                let (config, db) = config.open()?;
                alerts::run(command, &config, &db).await
            }
            Command::Backup { config, command } => backup::run(command, &config.config).await,
            Command::Certs { config, command } => {
                let config = Config::load(&config.config)?;
                certs::run(command, &config, crate::clock::Clock::default().now())
            }
            Command::Ca { config, command } => {
                let (config, db) = config.open()?;
                ca::run(command, &config, &db, crate::clock::Clock::default().now()).await
            }
            Command::Ssh { config, command } => {
                let (config, db) = config.open()?;
                ssh::run(
                    command,
                    &config,
                    &db,
                    crate::clock::Clock::default().now_ms(),
                )
                .await
            }
            Command::DefaultConfig => {
                print!("{}", config::EXAMPLE);
                Ok(())
            }
        }
    }
}
