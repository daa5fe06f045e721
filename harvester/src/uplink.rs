//! The mTLS connection to the nester's ingest listener: one kept-alive HTTP/1.1 connection,
//! re-opened when it breaks. TLS 1.3 only, the nester CA as the only trust anchor.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use shared::protocol::{JWS_MEDIA_TYPE, REPORTS_PATH};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::state::Identity;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the nester said about a delivered report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Stored now (201).
    Stored,
    /// Already stored earlier (200): a repeat delivery, harmless.
    AlreadyStored,
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("cannot connect to the nester at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with the nester at {addr} failed: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out talking to the nester at {0}")]
    Timeout(String),
    #[error("HTTP error talking to the nester: {0}")]
    Http(#[from] hyper::Error),
    #[error("nester refused the report ({status}, {code}): {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("invalid nester address `{0}`: expected host:port")]
    BadAddress(String),
}

pub struct Uplink {
    addr: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Uplink {
    /// `addr` is the ingest `host:port`; `server_name` overrides the name checked in the
    /// nester's certificate (default: the host part of `addr`).
    pub fn new(addr: &str, server_name: Option<&str>, identity: &Identity) -> anyhow::Result<Self> {
        let host = match server_name {
            Some(name) => name,
            None => host_part(addr).ok_or_else(|| UplinkError::BadAddress(addr.to_string()))?,
        };
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| UplinkError::BadAddress(addr.to_string()))?;
        let mut roots = RootCertStore::empty();
        roots.add(identity.ca.clone())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())?;
        Ok(Self {
            addr: addr.to_string(),
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
            sender: None,
        })
    }

    /// Posts one signed report; reuses the open connection when there is one. A reused
    /// connection may have been closed by the nester while idle: then the report is sent once
    /// more on a new connection, which is safe because the nester stores a report id once.
    pub async fn send(&mut self, jws: String) -> Result<Delivery, UplinkError> {
        if let Some(sender) = self.sender.take().filter(|s| !s.is_closed()) {
            match self.post_on(sender, jws.clone()).await {
                Err(UplinkError::Http(e)) => {
                    tracing::debug!(error = %e, "kept-alive connection failed; reconnecting");
                }
                done => return done,
            }
        }
        let sender = self.connect().await?;
        self.post_on(sender, jws).await
    }

    async fn post_on(
        &mut self,
        sender: SendRequest<Full<Bytes>>,
        jws: String,
    ) -> Result<Delivery, UplinkError> {
        let (sender, result) =
            tokio::time::timeout(REQUEST_TIMEOUT, post(sender, &self.server_name, jws))
                .await
                .map_err(|_| UplinkError::Timeout(self.addr.clone()))?;
        self.sender = sender;
        result
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, UplinkError> {
        let addr = self.addr.clone();
        let handshake = async {
            let tcp = TcpStream::connect(&addr)
                .await
                .map_err(|source| UplinkError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            let tls = self
                .connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|source| UplinkError::Tls {
                    addr: addr.clone(),
                    source,
                })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "ingest connection closed");
                }
            });
            Ok(sender)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| UplinkError::Timeout(addr.clone()))?
    }
}

/// Sends one request; hands the connection back when it may be reused.
async fn post(
    mut sender: SendRequest<Full<Bytes>>,
    server_name: &ServerName<'static>,
    jws: String,
) -> (
    Option<SendRequest<Full<Bytes>>>,
    Result<Delivery, UplinkError>,
) {
    let request = Request::post(REPORTS_PATH)
        .header(hyper::header::HOST, server_name.to_str().as_ref())
        .header(hyper::header::CONTENT_TYPE, JWS_MEDIA_TYPE)
        .body(Full::new(Bytes::from(jws)))
        .expect("a static request is well-formed");
    let result = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(match status {
            StatusCode::CREATED => Delivery::Stored,
            StatusCode::OK => Delivery::AlreadyStored,
            _ => return Err(refusal(status, &body)),
        })
    }
    .await;
    let reusable = result.is_ok() && !sender.is_closed();
    (reusable.then_some(sender), result)
}

fn refusal(status: StatusCode, body: &[u8]) -> UplinkError {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => UplinkError::Refused {
            status,
            code: error.code,
            message: error.message,
        },
        Err(_) => UplinkError::Refused {
            status,
            code: "unexpected_response".into(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

/// `host` of `host:port`, `[v6]:port` or `v6` with port.
fn host_part(addr: &str) -> Option<&str> {
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_of_addresses() {
        assert_eq!(host_part("nester.example:8443"), Some("nester.example"));
        assert_eq!(host_part("127.0.0.1:1"), Some("127.0.0.1"));
        assert_eq!(host_part("[::1]:8443"), Some("::1"));
        assert_eq!(host_part("nester.example"), None);
        assert_eq!(host_part(":8443"), None);
    }

    #[test]
    fn refusals_carry_the_nester_error() {
        let body = br#"{"error":{"code":"probe_mismatch","message":"no"}}"#;
        let err = refusal(StatusCode::FORBIDDEN, body);
        assert!(
            matches!(err, UplinkError::Refused { ref code, .. } if code == "probe_mismatch"),
            "{err}"
        );
        let err = refusal(StatusCode::BAD_GATEWAY, b"<html>");
        assert!(err.to_string().contains("unexpected_response"), "{err}");
    }
}
