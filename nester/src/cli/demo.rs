//! `nester demo`: the whole pipe on one machine with no configuration.
//!
//! A temporary data directory (or `--data-dir`), a CA, both listeners on loopback ports the OS
//! picks, a few demo services with banners for the harvester to find, and an in-process
//! harvester that scans 127.0.0.1 and reports every few seconds.

use std::future::Future;
use std::path::PathBuf;

use anyhow::Context;
use harvester::config::{NesterConfig, ScanConfig, SpoolConfig};
use harvester::scan::ScanOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::audit::Actor;
use crate::server::{Listeners, Server};

#[derive(clap::Args)]
pub struct Args {
    /// Keep the demo's data here instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seconds between the demo harvester's reports.
    #[arg(long, default_value_t = 5)]
    pub interval_secs: u64,
}

/// Services the demo opens for the harvester to find, with the banner each one sends.
const SERVICES: &[&str] = &[
    "SSH-2.0-OpenSSH_9.2p1 Seahawks-demo\r\n",
    "220 demo.seahawks.invalid ESMTP ready\r\n",
    "HTTP/1.0 200 OK\r\nServer: seahawks-demo\r\nContent-Length: 0\r\n\r\n",
];

pub async fn run(options: Args, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.interval_secs >= 1,
        "--interval-secs must be at least 1"
    );
    let temp = match options.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("seahawks-demo-")
                .tempdir()?,
        ),
    };
    let root = match (&options.data_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().join("nester"),
        (None, None) => unreachable!("a temporary directory exists when no data dir is given"),
    };
    let dir = DataDir::new(&root);
    if !dir.is_initialised() {
        super::init::init(&dir, &[]).context("cannot initialise the demo data directory")?;
    }
    let config = Config::loopback(&root);
    let server = Server::open(&config)?;
    let listeners = Listeners::bind(&config).await?;
    let (ingest, web) = (listeners.ingest_addr(), listeners.web_addr());

    let mut services = JoinSet::new();
    let mut ports = Vec::new();
    for banner in SERVICES {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        ports.push(listener.local_addr()?.port());
        services.spawn(serve_banner(listener, banner));
    }
    // A port nobody listens on, to show a closed port.
    ports.push(
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port(),
    );
    ports.push(web.port());

    let (stop, stopped) = watch::channel(());
    let wait = |mut rx: watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let db = server.state.db.clone();
    let ca = server.state.authorities.get().issuing.cert.clone();
    // Before the server starts, which warns when nobody can sign in.
    let login = demo_login(&db).await?;
    let server = tokio::spawn(server.run(listeners, wait(stopped.clone())));

    // The demo harvester enrolls like any other: a one-use token, then the pinned first contact.
    let state_dir = root.join("demo-harvester");
    if !state_dir.join(harvester::state::IDENTITY_FILE).exists() {
        let token = crate::ops::enrollment::create(
            &db,
            Actor::cli(),
            &ca,
            ingest.to_string(),
            "demo",
            time::Duration::minutes(5),
            1,
        )
        .await?
        .encode();
        harvester::enroll::enroll(&token, &state_dir)
            .await
            .context("the demo harvester cannot enroll")?;
    }
    let agent = harvester::Agent::new(harvester::Config {
        state_dir,
        interval: std::time::Duration::from_secs(options.interval_secs),
        nester: NesterConfig::default(),
        scan: ScanConfig {
            targets: vec!["127.0.0.1".into()],
            scope: vec!["127.0.0.1/32".parse()?],
            ports: ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            options: ScanOptions::default(),
        },
        spool: SpoolConfig::default(),
        wan: harvester::wan::WanOptions {
            targets: vec!["127.0.0.1".into()],
            probes: 3,
            ..Default::default()
        },
        metrics: None,
        ssh: None,
    })?;

    println!("dashboard: https://{web}/");
    println!("login: {} / {}", DEMO_ADMIN, login.password);
    println!(
        "totp: {} (add it to an authenticator app; `oathtool --totp -b {}` prints the code)",
        login.otpauth, login.secret
    );
    println!(
        "api token: {} (read-only; curl -H 'Authorization: Bearer …' https://{web}/api/v1/probes)",
        login.api_token
    );
    println!("ingest: {ingest}");
    println!("data dir: {}", root.display());
    println!(
        "CA certificate: {} (browsers warn until they trust it)",
        dir.ca_cert().display()
    );
    println!(
        "demo probe {} scans 127.0.0.1 every {} s; press Ctrl-C to stop{}",
        agent.probe_id(),
        options.interval_secs,
        if temp.is_some() {
            " and remove the data dir"
        } else {
            ""
        }
    );

    tokio::join!(agent.run(wait(stopped)), async move {
        shutdown.await;
        let _ = stop.send(());
    });
    server.await?;
    services.shutdown().await;
    drop(temp);
    Ok(())
}

const DEMO_ADMIN: &str = "admin";

struct DemoLogin {
    password: String,
    secret: String,
    otpauth: String,
    api_token: String,
}

/// The demo's admin, with a new generated password, TOTP secret and read-only API token on
/// every start (nothing is fixed, so nothing can leak from the source).
async fn demo_login(db: &crate::db::Db) -> anyhow::Result<DemoLogin> {
    use crate::auth::{credentials, secret, totp};
    use crate::db::{Role, UserChange};
    let password = credentials::generate_password()?;
    let hash = credentials::hash_password(password.clone()).await?;
    if db
        .add_user(Actor::cli(), DEMO_ADMIN.into(), Role::Admin, hash.clone())
        .await?
        == UserChange::AlreadyExists
    {
        db.set_password(Actor::cli(), DEMO_ADMIN.into(), hash)
            .await?;
    }
    let user_id = db
        .user_id(DEMO_ADMIN.into())
        .await?
        .context("the demo admin was just created")?;
    let totp_secret = totp::new_secret()?;
    let (_, hashes) = secret::recovery_codes()?;
    db.enable_totp(Actor::cli(), user_id, totp_secret.clone(), 0, hashes)
        .await?;
    let api_token = crate::ops::api_tokens::create(
        db,
        Actor::cli(),
        user_id,
        "demo",
        crate::db::Scope::Read,
        time::Duration::days(30),
    )
    .await?;
    Ok(DemoLogin {
        password,
        secret: totp::base32(&totp_secret),
        otpauth: totp::otpauth_url(&totp_secret, DEMO_ADMIN)?,
        api_token,
    })
}

/// Accepts connections and greets each with `banner`.
async fn serve_banner(listener: TcpListener, banner: &'static str) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let _ = stream.write_all(banner.as_bytes()).await;
        });
    }
}
