//! rustls configurations for the two listeners. TLS 1.3 only, aws-lc-rs. Each presents a
//! [`ServedCert`], which renewal and reloads replace while the listener serves.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;

use crate::config::WebConfig;
use crate::datadir::{DataDir, Listener};
use crate::net::client_roots::ClientRoots;
use crate::net::served_cert::ServedCert;

/// A listener's TLS configuration and the certificate it serves (to replace later).
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub cert: Arc<ServedCert>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn issued(dir: &DataDir, listener: Listener) -> (PathBuf, PathBuf) {
    (dir.listener_cert(listener), dir.listener_key(listener))
}

/// Ingest: a client certificate, when one is presented, must chain to one of `cas` (else the
/// handshake fails). Connections without one may only enroll: `ingest::ProbeIdentity` refuses
/// them everywhere else. Also returns the client CAs, to replace during a CA rotation.
pub fn ingest(
    dir: &DataDir,
    cas: &[CertificateDer<'static>],
) -> anyhow::Result<(Tls, Arc<ClientRoots>)> {
    let verifier = ClientRoots::new(cas, provider())?;
    let (cert, key) = issued(dir, Listener::Ingest);
    let served = ServedCert::load(&cert, &key, provider())?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier.clone())
        .with_cert_resolver(served.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = Tls {
        config: Arc::new(config),
        cert: served,
    };
    Ok((tls, verifier))
}

/// Web: plain server authentication, HTTP/2 or HTTP/1.1, with the operator's certificate
/// when the config names one, else the one issued at `nester init`.
pub fn web(dir: &DataDir, web: &WebConfig) -> anyhow::Result<Tls> {
    let (cert_path, key_path) = web_files(dir, web)?;
    let served = ServedCert::load(&cert_path, &key_path, provider())?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(served.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        cert: served,
    })
}

/// The web listener's certificate and key files: the operator's, or the nester's own.
pub fn web_files(dir: &DataDir, web: &WebConfig) -> anyhow::Result<(PathBuf, PathBuf)> {
    match (&web.cert, &web.key) {
        (Some(cert), Some(key)) => Ok((cert.clone(), key.clone())),
        (None, None) => Ok(issued(dir, Listener::Web)),
        _ => anyhow::bail!("[web] needs both `cert` and `key`, or neither"),
    }
}
