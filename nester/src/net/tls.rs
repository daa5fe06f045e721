//! rustls configurations for the two listeners. TLS 1.3 only, aws-lc-rs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::WebConfig;
use crate::datadir::{DataDir, Listener};
use crate::pki::CaCert;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate chain and its key, from PEM files.
fn identity(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .with_context(|| format!("cannot read the certificate chain {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key {}", key.display()))?;
    Ok((chain, key))
}

fn issued(dir: &DataDir, listener: Listener) -> (PathBuf, PathBuf) {
    (dir.listener_cert(listener), dir.listener_key(listener))
}

/// Ingest: a client certificate, when one is presented, must chain to our CA (else the
/// handshake fails). Connections without one may only enroll: `ingest::ProbeIdentity` refuses
/// them everywhere else.
pub fn ingest(dir: &DataDir, ca: &CaCert) -> anyhow::Result<Arc<ServerConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone())?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()?;
    let (cert, key) = issued(dir, Listener::Ingest);
    let (chain, key) = identity(&cert, &key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Web: plain server authentication, HTTP/2 or HTTP/1.1, with the operator's certificate
/// when the config names one, else the one issued at `nester init`.
pub fn web(dir: &DataDir, web: &WebConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let (cert_path, key_path) = match (&web.cert, &web.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        (None, None) => issued(dir, Listener::Web),
        _ => anyhow::bail!("[web] needs both `cert` and `key`, or neither"),
    };
    let (chain, key) = identity(&cert_path, &key_path)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                key_path.display(),
                cert_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
