//! Test fixtures: a nester on loopback ports chosen by the OS, probe identities, configs and
//! ports. The HTTPS client side is in `client.rs`; users and web sessions in `sessions.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use harvester::config::{NesterConfig, ScanConfig, SpoolConfig};
use harvester::scan::ScanOptions;
use hyper::Method;
use nester::config::Config;
use nester::datadir::DataDir;
use nester::db::Role;
use nester::server::{Listeners, Server};
use rustls_pki_types::CertificateDer;
use tokio::sync::oneshot;
use uuid::Uuid;

pub use crate::client::{
    ClientCert, Connection, Response, WebSession, cookie_in, csrf_in, form_body, https, tls,
};

pub use crate::wait::{eventually, eventually_async, poll, until, within};

pub struct TestNester {
    pub dir: DataDir,
    pub ingest: SocketAddr,
    pub web: SocketAddr,
    pub ca: CertificateDer<'static>,
    pub config: Config,
    pub db: Option<nester::db::Db>,
    /// The running server's clock; tests move it forward instead of waiting.
    pub clock: Option<nester::clock::Clock>,
    /// A read-only API token of an admin, sent with every `/api/` request of [`Self::get`].
    pub api_token: String,
    /// A signed-in `noc` session, sent with every page request of [`Self::get`].
    pub noc: Option<WebSession>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _temp: tempfile::TempDir,
}

impl TestNester {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("nester"));
        nester::cli::init::init(&dir, &[]).unwrap();
        let mut config = Config::loopback(dir.root());
        config.ingest.enroll_per_minute = 1000;
        adjust(&mut config);
        let ca = nester::pki::CaCert::load(&dir).unwrap().der;
        let mut nester = Self {
            dir,
            ingest: config.ingest.listen,
            web: config.web.listen,
            ca,
            config,
            db: None,
            clock: None,
            api_token: String::new(),
            noc: None,
            stop: None,
            task: None,
            _temp: temp,
        };
        nester.launch().await;
        let admin = nester.add_user("harness-admin", Role::Admin).await;
        let admin_id = nester.user_id(&admin.0).await;
        nester.api_token = nester::ops::api_tokens::create(
            nester.db(),
            nester::db::audit::Actor::cli(),
            admin_id,
            "harness",
            nester::db::Scope::Read,
            time::Duration::days(1),
        )
        .await
        .unwrap();
        let (noc, password) = nester.add_user("harness-noc", Role::Noc).await;
        nester.noc = Some(nester.login(&noc, &password).await.unwrap());
        nester
    }

    pub fn db(&self) -> &nester::db::Db {
        self.db.as_ref().unwrap()
    }

    pub fn clock(&self) -> &nester::clock::Clock {
        self.clock.as_ref().unwrap()
    }

    /// Binds the configured addresses and serves; afterwards they hold the real ports.
    async fn launch(&mut self) {
        let server = Server::open(&self.config).unwrap();
        self.db = Some(server.state.db.clone());
        self.clock = Some(server.state.clock.clone());
        let listeners = Listeners::bind(&self.config).await.unwrap();
        (self.ingest, self.web) = (listeners.ingest_addr(), listeners.web_addr());
        (self.config.ingest.listen, self.config.web.listen) = (self.ingest, self.web);
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(server.run(listeners, async {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    /// Stops the server and waits until its listeners are closed.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.stop.take().map(|s| s.send(()));
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Stops serving (an outage), keeping the data and the ports for `start_listening`.
    pub async fn stop_listening(&mut self) {
        self.shutdown().await;
    }

    pub async fn start_listening(&mut self) {
        self.launch().await;
    }

    /// Stops the server and starts it again on the same data and the same ports.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.launch().await;
    }

    /// An enrollment token for `site`, as `nester token create` makes it.
    pub async fn token(&self, site: &str, ttl: time::Duration, uses: u32) -> String {
        let db = self.db.as_ref().unwrap();
        let ca = nester::pki::CaCert::load(&self.dir).unwrap();
        nester::ops::enrollment::create(
            db,
            nester::db::audit::Actor::cli(),
            &ca,
            self.ingest.to_string(),
            site,
            ttl,
            uses,
        )
        .await
        .unwrap()
        .encode()
    }

    /// A harvester enrolled through the real enrollment path (token, pinned first contact, CSR).
    pub async fn probe(&self) -> Probe {
        let token = self
            .token("test-site", time::Duration::minutes(30), 1)
            .await;
        let temp = tempfile::tempdir().unwrap();
        let state_dir = temp.path().join("harvester");
        let (id, site) = harvester::enroll::enroll(&token, &state_dir).await.unwrap();
        assert_eq!(site, "test-site");
        Probe {
            id,
            state_dir,
            _temp: temp,
        }
    }

    /// An enrolled probe of `test-site` reporting every minute, one host up, that has
    /// delivered its first report (generated now, on the nester's clock).
    pub async fn reporting_probe(&self) -> (Probe, seahawks_tests::synthetic::SimProbe) {
        use seahawks_tests::synthetic::{SimHost, SimProbe};
        let probe = self.probe().await;
        let mut sim = SimProbe::new(
            probe.id,
            "test-site",
            vec![SimHost::new("10.0.0.1", None, &[])],
        );
        sim.interval_s = 60;
        self.deliver(&probe, &sim.report(self.clock().now(), Vec::new()))
            .await;
        (probe, sim)
    }

    /// The open (not resolved) alert of `rule` about `subject`: severity, state, count.
    pub fn open_alert(&self, rule: &str, subject: &str) -> Option<(String, String, i64)> {
        self.sqlite()
            .query_row(
                "SELECT severity, state, count FROM alerts
                 WHERE rule = ?1 AND subject = ?2 AND state != 'resolved'",
                [rule, subject],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok()
    }

    /// A harvester agent for `probe` scanning 127.0.0.1 on `ports`.
    pub fn agent(&self, probe: &Probe, ports: &str) -> harvester::Agent {
        harvester::Agent::new(self.agent_config(probe, ports)).unwrap()
    }

    pub fn agent_config(&self, probe: &Probe, ports: &str) -> harvester::Config {
        harvester::Config {
            state_dir: probe.state_dir.clone(),
            interval: std::time::Duration::from_secs(60),
            nester: NesterConfig::default(),
            scan: ScanConfig {
                targets: vec!["127.0.0.1".into()],
                scope: vec!["127.0.0.0/8".parse().unwrap()],
                ports: ports.into(),
                options: ScanOptions {
                    concurrency: 64,
                    max_timeout_ms: 2000,
                    retries: 0,
                    banner_timeout_ms: 500,
                    rate: 0,
                    ..ScanOptions::default()
                },
            },
            spool: SpoolConfig::default(),
            wan: Default::default(),
            metrics: None,
            ssh: None,
        }
    }

    /// A read-only view of the real SQLite file.
    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.dir.database(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    /// A read-write connection of the test's own, as the CLI or a repair by hand would
    /// open: what it changes happens behind the nester's back.
    pub fn other_connection(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.dir.database()).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }

    pub fn scalar(&self, sql: &str) -> i64 {
        self.sqlite().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub fn count(&self, table: &str) -> i64 {
        self.sqlite()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// GET on the web listener, signed in: the API token on `/api/`, the noc session on pages.
    pub async fn get(&self, path: &str) -> Response {
        self.web_request(Method::GET, path).await
    }

    pub async fn web_request(&self, method: Method, path: &str) -> Response {
        let bearer = format!("Bearer {}", self.api_token);
        let credentials = if path.starts_with("/api/") {
            ("authorization", bearer.as_str())
        } else {
            ("cookie", self.noc.as_ref().unwrap().cookie.as_str())
        };
        self.anonymous(method, path, &[credentials], Vec::new())
            .await
    }

    /// POST to the ingest listener presenting `client` (certificate chain and key).
    pub async fn post_ingest(
        &self,
        client: Option<&ClientCert>,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Result<Response, String> {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        https(
            self.ingest,
            &self.ca,
            client,
            Method::POST,
            path,
            &headers,
            body.into(),
        )
        .await
    }
}

impl TestNester {
    /// Signs `report` as `probe` and delivers it over mTLS; panics unless it is stored.
    pub async fn deliver(&self, probe: &Probe, report: &shared::Report) {
        let jws = probe.signer().sign_report(report).unwrap();
        let response = self
            .post_ingest(
                Some(&probe.client_cert()),
                shared::protocol::REPORTS_PATH,
                Some(shared::protocol::JWS_MEDIA_TYPE),
                jws,
            )
            .await
            .unwrap();
        assert!(
            response.status.is_success(),
            "report {} refused: {} {}",
            report.sequence,
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
}

/// Name, content type, body, expected status, expected error code.
pub type Refusal<'a> = (
    &'a str,
    Option<&'a str>,
    Vec<u8>,
    hyper::StatusCode,
    &'a str,
);

impl TestNester {
    /// Posts each case to `path` on the ingest listener; checks its status and error code.
    pub async fn expect_refusals(
        &self,
        client: Option<&ClientCert>,
        path: &str,
        cases: Vec<Refusal<'_>>,
    ) {
        for (name, content_type, body, status, code) in cases {
            let response = self
                .post_ingest(client, path, content_type, body)
                .await
                .unwrap();
            assert_eq!(
                response.status,
                status,
                "{name}: {}",
                String::from_utf8_lossy(&response.body)
            );
            assert_eq!(response.error_code(), code, "{name}");
        }
    }
}

impl Drop for TestNester {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
    }
}

pub struct Probe {
    pub id: Uuid,
    pub state_dir: PathBuf,
    pub _temp: tempfile::TempDir,
}

impl Probe {
    pub fn identity(&self) -> harvester::state::Identity {
        harvester::state::Identity::load(&self.state_dir).unwrap()
    }

    pub fn client_cert(&self) -> ClientCert {
        ClientCert::load(
            &self.state_dir.join("identity.pem"),
            &self.state_dir.join("identity.pem"),
        )
    }

    pub fn signer(&self) -> shared::Signer {
        self.identity().signer().unwrap()
    }
}

/// A fresh key of `alg` and a certificate signing request for it, PEM.
pub fn key_and_csr(alg: &'static rcgen::SignatureAlgorithm) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    (key, csr)
}

/// A nester config file for `data`, both listeners on loopback port 0, with more `[web]`
/// settings appended.
pub fn write_nester_config(path: &Path, data: &Path, web: &str) {
    let text = format!(
        "data_dir = {data:?}\n[ingest]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n{web}"
    );
    std::fs::write(path, text).unwrap();
}

/// A harvester config file scanning `ports` on 127.0.0.1 every `interval`.
pub fn write_harvester_config(path: &Path, state: &Path, interval: &str, ports: &str) {
    let text = format!(
        "state_dir = {:?}\ninterval = {interval:?}\n[scan]\nscope = [\"127.0.0.0/8\"]\ntargets = [\"127.0.0.1\"]\nports = {ports:?}\nmax_timeout_ms = 500\n",
        state.to_str().unwrap()
    );
    std::fs::write(path, text).unwrap();
}

/// A `harvester.toml` for `probe`, reporting every `interval` on a port nothing listens on,
/// in a new temporary directory (kept as long as the first value lives).
pub fn harvester_toml(probe: &Probe, interval: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("harvester.toml");
    write_harvester_config(
        &config,
        &probe.state_dir,
        interval,
        &closed_port().to_string(),
    );
    (temp, config)
}

/// A port on 127.0.0.1 free now, for a program that binds it itself (it may be taken in
/// between: use it for one listener started at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port on 127.0.0.1 that nothing listens on, and that nothing else can take while the
/// tests run: a socket bound to it, never listening, holds it (a connection gets a reset).
pub fn closed_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    HELD.lock().unwrap().push(socket);
    port
}
