//! The HTTPS client side of the tests: client certificates, one request on a new connection
//! (`https`) or many on one kept alive (`Connection`), responses, cookies and forms.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
    /// The body as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

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
    tls_from(None, addr, ca, client).await
}

/// The same from the local address `source` (another loopback address, say).
pub async fn tls_from(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&ClientCert>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let now = Arc::new(rustls::time_provider::DefaultTimeProvider);
    connect(source, addr, ca, client, now).await
}

/// A TLS connection to `addr` trusting `ca` that checks certificates at `time` (a test's
/// moved clock) instead of now.
pub async fn tls_at(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    time: Arc<dyn rustls::time_provider::TimeProvider>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    connect(None, addr, ca, None, time).await
}

async fn connect(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&ClientCert>,
    time: Arc<dyn rustls::time_provider::TimeProvider>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_details(provider, time)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = match source {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| e.to_string())?;
            socket.connect(addr).await
        }
    }
    .map_err(|e| e.to_string())?;
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
        Self::open_from(None, addr, ca, client).await
    }

    /// A connection from the local address `source`.
    pub async fn open_from(
        source: Option<std::net::IpAddr>,
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        client: Option<&ClientCert>,
    ) -> Result<Self, String> {
        let tls = tls_from(source, addr, ca, client).await?;
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
