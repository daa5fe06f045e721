use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nester::config::{self, Config};
use nester::datadir::DataDir;
use nester::server::{Listeners, Server};
use nester::users::Role;
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
        /// User name of the first admin. Its password is typed twice on a terminal, read
        /// from standard input with --password-stdin, or generated and shown once.
        #[arg(long, default_value = "admin")]
        admin: String,
        #[arg(long)]
        password_stdin: bool,
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
    /// The database: sizes, and retention on demand.
    Db {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Enrolled probes: list, revoke.
    Probe {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: ProbeCommand,
    },
    /// Users of the dashboard and the API: add, list, disable, enable, reset-password, set-role,
    /// reset-mfa.
    User {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens for scripts (`Authorization: Bearer`): create, list, revoke.
    ApiToken {
        #[command(flatten)]
        config: AdminConfig,
        #[command(subcommand)]
        command: ApiTokenCommand,
    },
    /// Print an annotated example configuration.
    DefaultConfig,
}

#[derive(Subcommand)]
enum ApiTokenCommand {
    /// Create a token for a user and print it (shown once).
    Create {
        #[arg(long)]
        user: String,
        /// What it is for, e.g. `inventory-sync`.
        #[arg(long, default_value = "cli")]
        name: String,
        /// `read` (GET only) or `read-write`.
        #[arg(long, default_value = "read")]
        scope: nester::db::Scope,
        /// How long it stays valid, e.g. `30d`, `1y`.
        #[arg(long, default_value = "90d")]
        ttl: humantime::Duration,
    },
    /// List tokens (of one user with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { token_id: i64 },
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

/// Passwords are typed twice on a terminal, read from standard input with --password-stdin,
/// or generated and shown once. None is ever taken from the command line.
#[derive(Subcommand)]
enum UserCommand {
    /// Add a user with a role: admin, noc or support.
    Add {
        username: String,
        #[arg(long)]
        role: Role,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, their roles and state.
    List,
    /// Disable a user: no more logins.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Give a user a new password.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role.
    SetRole { username: String, role: Role },
    /// Turn off a user's two-factor authentication (lost authenticator and recovery codes);
    /// ends their sessions. Admins must set it up again at their next sign-in.
    ResetMfa { username: String },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Rows and bytes of every table and index, and the file's size.
    Stats,
    /// Apply the retention policy now (`nester serve` does it every `retention.every`).
    Retain,
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
        Command::Init {
            data_dir,
            names,
            admin,
            password_stdin,
        } => {
            nester::users::check_username(&admin)?;
            commands::ensure_uninitialised(&DataDir::new(&data_dir))?;
            let password = commands::new_password(password_stdin)?;
            commands::init(&DataDir::new(&data_dir), &names)?;
            let db = nester::db::Db::open(&DataDir::new(&data_dir).database())?;
            print!(
                "{}",
                commands::add_user(&db, &admin, Role::Admin, password).await?
            );
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
            if let Some(plain) = listeners.redirect_addr() {
                println!("redirect: http://{plain}/ (to HTTPS)");
            }
            server.run(listeners, nester::shutdown_signal()).await;
        }
        Command::Token { config, command } => {
            let config = Config::load(&config.config)?;
            let db = nester::db::Db::open(&DataDir::new(&config.data_dir).database())?;
            match command {
                TokenCommand::Create { site, ttl, uses } => {
                    let lifetime = time::Duration::try_from(*ttl).context("--ttl is too long")?;
                    let dir = DataDir::new(&config.data_dir);
                    let ingest = config.public_ingest_address();
                    let token =
                        commands::create_token(&db, &dir, ingest.clone(), &site, lifetime, uses)
                            .await?;
                    // The token alone on stdout, for scripts; what to do with it for people.
                    println!("{token}");
                    eprintln!(
                        "for site `{site}`: {uses} enrollment(s) within {ttl}; harvesters \
                         will dial {ingest} (if they cannot reach it, set `public_address` \
                         under [ingest] and make a new token)\n\
                         on the site, with the token in FILE: \
                         `harvester enroll --token-file FILE`"
                    );
                }
                TokenCommand::List => print!("{}", commands::list_tokens(&db).await?),
                TokenCommand::Revoke { token_id } => commands::revoke_token(&db, &token_id).await?,
            }
        }
        Command::Db { config, command } => {
            let config = Config::load(&config.config)?;
            let db = nester::db::Db::open(&DataDir::new(&config.data_dir).database())?;
            match command {
                DbCommand::Stats => print!("{}", commands::db_stats(&db).await?),
                DbCommand::Retain => {
                    let done = db
                        .retain(config.retention.policy()?, time::OffsetDateTime::now_utc())
                        .await?;
                    println!(
                        "{} reports deleted, {} WAN samples rolled up into hours, {} hours into days, {} pages freed",
                        done.reports_deleted,
                        done.samples_rolled_up,
                        done.hours_rolled_up,
                        done.pages_freed
                    );
                }
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
        Command::User { config, command } => {
            let config = Config::load(&config.config)?;
            let db = nester::db::Db::open(&DataDir::new(&config.data_dir).database())?;
            match command {
                UserCommand::Add {
                    username,
                    role,
                    password_stdin,
                } => {
                    let password = commands::new_password(password_stdin)?;
                    print!(
                        "{}",
                        commands::add_user(&db, &username, role, password).await?
                    );
                }
                UserCommand::List => print!("{}", commands::list_users(&db).await?),
                UserCommand::Disable { username } => {
                    commands::set_user_disabled(&db, &username, true).await?;
                    println!("user {username} disabled");
                }
                UserCommand::Enable { username } => {
                    commands::set_user_disabled(&db, &username, false).await?;
                    println!("user {username} enabled");
                }
                UserCommand::ResetPassword {
                    username,
                    password_stdin,
                } => {
                    let password = commands::new_password(password_stdin)?;
                    print!(
                        "{}",
                        commands::reset_password(&db, &username, password).await?
                    );
                }
                UserCommand::SetRole { username, role } => {
                    commands::set_role(&db, &username, role).await?;
                    println!("user {username} is now {role}");
                }
                UserCommand::ResetMfa { username } => {
                    commands::reset_mfa(&db, &username).await?;
                    println!("two-factor authentication of {username} turned off; sessions ended");
                }
            }
        }
        Command::ApiToken { config, command } => {
            let config = Config::load(&config.config)?;
            let db = nester::db::Db::open(&DataDir::new(&config.data_dir).database())?;
            match command {
                ApiTokenCommand::Create {
                    user,
                    name,
                    scope,
                    ttl,
                } => {
                    let ttl = time::Duration::try_from(*ttl).context("--ttl is too long")?;
                    let token =
                        commands::create_user_api_token(&db, &user, &name, scope, ttl).await?;
                    println!("{token}");
                }
                ApiTokenCommand::List { user } => {
                    print!("{}", commands::list_api_tokens(&db, user.as_deref()).await?);
                }
                ApiTokenCommand::Revoke { token_id } => {
                    commands::revoke_api_token(&db, token_id).await?;
                    println!("API token {token_id} revoked");
                }
            }
        }
        Command::DefaultConfig => print!("{}", config::EXAMPLE),
    }
    Ok(())
}
