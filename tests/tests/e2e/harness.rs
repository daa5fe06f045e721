//! Test fixtures: a nester on loopback ports chosen by the OS, probe identities, and an HTTPS
//! client that can present any client certificate (or none).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use harvester::config::{NesterConfig, ScanConfig, SpoolConfig};
use harvester::scan::ScanOptions;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use nester::auth::session::SESSION_COOKIE;
use nester::config::Config;
use nester::datadir::DataDir;
use nester::db::Role;
use nester::server::{Listeners, Server};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use uuid::Uuid;

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
        nester.api_token = nester::auth::api_token::create(
            nester.db(),
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

    /// Adds a user with a generated password; returns name and password.
    pub async fn add_user(&self, name: &str, role: Role) -> (String, String) {
        let password = nester::auth::credentials::generate_password().unwrap();
        let hash = nester::auth::credentials::hash_password(password.clone())
            .await
            .unwrap();
        let added = self.db().add_user(name.into(), role, hash).await.unwrap();
        assert_eq!(added, nester::db::UserChange::Done);
        (name.to_string(), password)
    }

    pub async fn user_id(&self, name: &str) -> i64 {
        self.db().user_id(name.into()).await.unwrap().unwrap()
    }

    /// Signs in through the real form (no second factor); `Err` with the refusal otherwise.
    pub async fn login(&self, username: &str, password: &str) -> Result<WebSession, Response> {
        let response = self.submit_login(username, password).await;
        if response.status != StatusCode::SEE_OTHER || response.header("location") != "/" {
            return Err(response);
        }
        Ok(self.session_from(&response).await)
    }

    /// The sign-in form as a browser sends it: its token cookie and field, same origin.
    pub async fn submit_login(&self, username: &str, password: &str) -> Response {
        let form = self.anonymous(Method::GET, "/login", &[], Vec::new()).await;
        let token = cookie_in(&form, "__Host-seahawks-login").expect("the form sets its token");
        assert_eq!(csrf_in(&form.body), token);
        let body = form_body(&[
            ("username", username),
            ("password", password),
            ("csrf", &token),
        ]);
        let cookie = format!("__Host-seahawks-login={token}");
        self.anonymous(
            Method::POST,
            "/login",
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "https://127.0.0.1"),
                ("sec-fetch-site", "same-origin"),
            ],
            body.into_bytes(),
        )
        .await
    }

    /// The session a sign-in response started, with the CSRF token its pages carry.
    pub async fn session_from(&self, response: &Response) -> WebSession {
        let token = cookie_in(response, SESSION_COOKIE).expect("a session cookie");
        let mut session = WebSession {
            cookie: format!("{SESSION_COOKIE}={token}"),
            csrf: String::new(),
        };
        let next = response.header("location").to_string();
        let page = self
            .as_session(&session, Method::GET, &next, &[], Vec::new())
            .await;
        session.csrf = csrf_in(&page.body);
        session
    }

    /// A request with `session`'s cookie; for other methods than GET, also its CSRF token in
    /// the form, from this site.
    pub async fn as_session(
        &self,
        session: &WebSession,
        method: Method,
        path: &str,
        fields: &[(&str, &str)],
        extra: Vec<(&str, &str)>,
    ) -> Response {
        let mut headers = vec![("cookie", session.cookie.as_str())];
        let mut body = Vec::new();
        if method != Method::GET {
            let mut all = fields.to_vec();
            all.push(("csrf", &session.csrf));
            body = form_body(&all).into_bytes();
            headers.push(("content-type", "application/x-www-form-urlencoded"));
            headers.push(("origin", "https://127.0.0.1"));
            headers.push(("sec-fetch-site", "same-origin"));
        }
        headers.extend(extra);
        self.anonymous(method, path, &headers, body).await
    }

    /// A request with exactly these headers and body, no credentials added.
    pub async fn anonymous(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        https(self.web, &self.ca, None, method, path, headers, body)
            .await
            .unwrap()
    }

    /// A GET with this `Authorization` header and nothing else.
    pub async fn get_authorized(&self, path: &str, authorization: &str) -> Response {
        self.anonymous(
            Method::GET,
            path,
            &[("authorization", authorization)],
            Vec::new(),
        )
        .await
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
        nester::cli::token::create_token(db, &ca, self.ingest.to_string(), site, ttl, uses)
            .await
            .unwrap()
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
    _temp: tempfile::TempDir,
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

/// A client certificate chain and key for mTLS.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ClientCert {
    pub fn from_pem(cert: &str, key: &str) -> Self {
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(Result::unwrap)
            .collect();
        Self {
            chain,
            key: PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        }
    }

    pub fn load(cert: &Path, key: &Path) -> Self {
        let chain = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Self {
            chain,
            key: PrivateKeyDer::from_pem_file(key).unwrap(),
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `code` of the API error shape, checking the shape on the way.
    pub fn error_code(&self) -> String {
        let json = self.json();
        assert!(
            json["error"]["message"].is_string(),
            "no error message in {json}"
        );
        json["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {json}"))
            .to_string()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser's session: its cookie (`name=value`) and the CSRF token of its forms.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub cookie: String,
    pub csrf: String,
}

/// The value `response` sets for cookie `name`.
pub fn cookie_in(response: &Response, name: &str) -> Option<String> {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The CSRF token in a page's forms.
pub fn csrf_in(html: &[u8]) -> String {
    let html = String::from_utf8_lossy(html);
    let start = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {html}"))
        + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// One HTTPS request on a new connection; `Err` when TLS or HTTP fails.
pub async fn https(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&ClientCert>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Response, String> {
    Connection::open(addr, ca, client)
        .await?
        .send(method, path, headers, body)
        .await
}

/// A TLS 1.3 connection to `addr` trusting `ca`, presenting `client` if given.
pub async fn tls(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&ClientCert>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))
}

/// One HTTP/1.1 connection over TLS, kept alive for as many requests as the test sends.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        client: Option<&ClientCert>,
    ) -> Result<Self, String> {
        let tls = tls(addr, ca, client).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Self { sender })
    }

    /// Sends one request on this connection; `Err` when it is closed or HTTP fails.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection closed: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
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
