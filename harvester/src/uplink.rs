//! The HTTPS connection to the nester's ingest listener: one kept-alive HTTP/1.1 connection,
//! re-opened when it breaks. TLS 1.3; either mTLS with the stored identity or, to enroll, the
//! pinned first contact (see `tls.rs`).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde::de::DeserializeOwned;
use shared::protocol::{ErrorBody, JWS_MEDIA_TYPE, REPORTS_PATH, code};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
    #[error("cannot connect to the nester at {addr}: {reason}")]
    Connect {
        addr: String,
        reason: std::io::Error,
    },
    #[error(
        "the nester at {0} presented a certificate from a CA this harvester does not trust. If \
         the nester's CA was rotated while this harvester was offline, enroll it again: ask an \
         administrator for a token (`nester token create --site SITE`), remove identity.pem from \
         the state directory and run `harvester enroll --token-file FILE`. Otherwise, someone \
         may be intercepting the connection."
    )]
    UntrustedNester(String),
    #[error("TLS with the nester at {addr} failed: {reason}")]
    Tls {
        addr: String,
        reason: std::io::Error,
    },
    #[error("timed out talking to the nester at {0}")]
    Timeout(String),
    #[error("HTTP error talking to the nester: {0}")]
    Http(#[from] hyper::Error),
    #[error("nester refused ({status}, {code}): {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("invalid nester address `{0}`: expected host:port")]
    BadAddress(String),
}

impl UplinkError {
    /// A refusal that resending the same request will not change (a 4xx other than 408/429).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Refused { status, .. }
            if status.is_client_error() && *status != StatusCode::REQUEST_TIMEOUT && *status != StatusCode::TOO_MANY_REQUESTS)
    }

    /// The nester's error code, for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
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
    pub fn new(
        addr: &str,
        server_name: Option<&str>,
        tls: ClientConfig,
    ) -> Result<Self, UplinkError> {
        let host = match server_name {
            Some(name) => name,
            None => host_part(addr).ok_or_else(|| UplinkError::BadAddress(addr.to_string()))?,
        };
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| UplinkError::BadAddress(addr.to_string()))?;
        Ok(Self {
            addr: addr.to_string(),
            server_name,
            connector: TlsConnector::from(Arc::new(tls)),
            sender: None,
        })
    }

    /// Posts one signed report.
    pub async fn send(&mut self, jws: String) -> Result<Delivery, UplinkError> {
        let (status, body) = self
            .request(Method::POST, REPORTS_PATH, JWS_MEDIA_TYPE, Bytes::from(jws))
            .await?;
        match status {
            StatusCode::CREATED => Ok(Delivery::Stored),
            StatusCode::OK => Ok(Delivery::AlreadyStored),
            _ => Err(refusal(status, &body)),
        }
    }

    /// Posts JSON and parses a 2xx JSON answer.
    pub async fn post_json<T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, UplinkError> {
        let body = Bytes::from(serde_json::to_vec(body).expect("request types are JSON"));
        let (status, body) = self
            .request(Method::POST, path, "application/json", body)
            .await?;
        json_answer(status, &body)
    }

    /// Gets a JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, UplinkError> {
        let (status, body) = self.request(Method::GET, path, "", Bytes::new()).await?;
        json_answer(status, &body)
    }

    /// One request. Reuses the open connection; if that one turns out dead (closed by the
    /// nester while idle), sends once more on a new connection. Every request we make is
    /// idempotent at the nester (a report id is stored once; a renewal just issues again).
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), UplinkError> {
        if let Some(sender) = self.sender.take().filter(|s| !s.is_closed()) {
            match self
                .request_on(sender, method.clone(), path, content_type, body.clone())
                .await
            {
                Err(UplinkError::Http(e)) => {
                    tracing::debug!(error = %e, "kept-alive connection failed; reconnecting")
                }
                done => return done,
            }
        }
        let sender = self.connect().await?;
        self.request_on(sender, method, path, content_type, body)
            .await
    }

    async fn request_on(
        &mut self,
        mut sender: SendRequest<Full<Bytes>>,
        method: Method,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), UplinkError> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.server_name.to_str().as_ref());
        if !content_type.is_empty() {
            request = request.header(hyper::header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Full::new(body))
            .expect("a request from valid parts is well-formed");
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let result = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| UplinkError::Timeout(self.addr.clone()))?;
        if result.is_ok() && !sender.is_closed() {
            self.sender = Some(sender);
        }
        Ok(result?)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, UplinkError> {
        let addr = self.addr.clone();
        let handshake = async {
            let tcp = TcpStream::connect(&addr)
                .await
                .map_err(|reason| UplinkError::Connect {
                    addr: addr.clone(),
                    reason,
                })?;
            let tls = self
                .connector
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|reason| tls_failure(&addr, reason))?;
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

/// A 2xx JSON answer, parsed; anything else is a refusal.
fn json_answer<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T, UplinkError> {
    if !status.is_success() {
        return Err(refusal(status, body));
    }
    serde_json::from_slice(body).map_err(|e| UplinkError::Refused {
        status,
        code: code::UNEXPECTED_RESPONSE.into(),
        message: e.to_string(),
    })
}

fn refusal(status: StatusCode, body: &[u8]) -> UplinkError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => UplinkError::Refused {
            status,
            code: error.code,
            message: error.message,
        },
        Err(_) => UplinkError::Refused {
            status,
            code: code::UNEXPECTED_RESPONSE.into(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

/// A failed handshake; a server certificate from an unknown CA gets its own explanation.
fn tls_failure(addr: &str, reason: std::io::Error) -> UplinkError {
    let unknown_issuer = reason
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            )
        });
    if unknown_issuer {
        return UplinkError::UntrustedNester(addr.to_string());
    }
    UplinkError::Tls {
        addr: addr.to_string(),
        reason,
    }
}

/// `host` of `host:port` or `[v6]:port`.
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
        assert_eq!(err.code(), Some("probe_mismatch"));
        assert!(err.is_permanent());
        let err = refusal(StatusCode::BAD_GATEWAY, b"<html>");
        assert!(
            err.to_string().contains("unexpected_response") && !err.is_permanent(),
            "{err}"
        );
        assert!(!refusal(StatusCode::TOO_MANY_REQUESTS, b"").is_permanent());
    }
}
