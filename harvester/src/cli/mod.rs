//! The `harvester` command line: the clap tree, and what each command does. `scan.rs` holds
//! the two that work alone (`scan`, `wan`); the daemon's commands are short and live here.

mod scan;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{Agent, Config, config};

/// Seahawks harvester: scans a site's network and reports to the nester.
#[derive(Parser)]
#[command(version)]
pub struct Cli {
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
    Scan(scan::ScanArgs),
    /// Measure WAN latency now: N probes per target, ICMP first, TCP connect as fallback.
    Wan(scan::WanArgs),
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

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Scan(args) => scan::scan(args).await?,
            Command::Wan(args) => scan::wan(args).await?,
            Command::Enroll {
                token_file,
                token,
                state_dir,
                config,
            } => enroll(token_file, token, state_dir, &config).await?,
            Command::Status { config, json } => {
                let status = crate::status::Status::read(&Config::load(&config)?)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", status.render(time::OffsetDateTime::now_utc()));
                }
            }
            Command::Run { config } => {
                let config = Config::load(&config)?;
                crate::metrics::install();
                let agent = Agent::new(config.clone()).context("cannot start the harvester")?;
                if let Some(metrics) = &config.metrics {
                    let listener = tokio::net::TcpListener::bind(metrics.listen)
                        .await
                        .with_context(|| {
                            format!("cannot listen on {} (metrics)", metrics.listen)
                        })?;
                    tracing::info!(listen = %metrics.listen, "metrics at /metrics");
                    tokio::spawn(crate::metrics::serve(listener, config));
                }
                tracing::info!(probe_id = %agent.probe_id(), "harvester running");
                agent.run(shutdown_signal()).await;
            }
            Command::DefaultConfig => print!("{}", config::EXAMPLE),
        }
        Ok(())
    }
}

/// `harvester enroll`: the token from a file or standard input, never from the command line.
async fn enroll(
    token_file: Option<PathBuf>,
    token: Option<String>,
    state_dir: Option<PathBuf>,
    config: &std::path::Path,
) -> anyhow::Result<()> {
    if token.is_some() {
        anyhow::bail!(
            "refusing a token on the command line: it would leak into process lists and shell history. \
             Put it in a file (--token-file FILE) or pipe it (--token-file -)"
        );
    }
    let token_file =
        token_file.context("give the token with --token-file FILE (or - for standard input)")?;
    let token = if token_file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .context("cannot read the token from standard input")?
    } else {
        std::fs::read_to_string(&token_file)
            .with_context(|| format!("cannot read {}", token_file.display()))?
    };
    let state_dir = match state_dir {
        Some(dir) => dir,
        None => Config::load(config)?.state_dir,
    };
    let (probe_id, site) = crate::enroll::enroll(&token, &state_dir).await?;
    println!("probe id: {probe_id}");
    println!("site: {site}");
    println!("state dir: {}", state_dir.display());
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what systemd sends to stop the service).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
