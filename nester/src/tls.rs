//! rustls configurations for the two listeners. TLS 1.3 only, aws-lc-rs.

use std::sync::Arc;

use anyhow::Context;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::datadir::DataDir;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub fn ca_cert(dir: &DataDir) -> anyhow::Result<CertificateDer<'static>> {
    let path = dir.pki("ca.pem");
    CertificateDer::from_pem_file(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn identity(
    dir: &DataDir,
    name: &str,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let cert = dir.pki(&format!("{name}.pem"));
    let key = dir.pki(&format!("{name}.key"));
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(Iterator::collect)
        .with_context(|| format!("cannot read {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .with_context(|| format!("cannot read {}", key.display()))?;
    Ok((chain, key))
}

/// Ingest: a client certificate, when one is presented, must chain to our CA (else the
/// handshake fails). Connections without one may only enroll: `ingest::ProbeIdentity` refuses
/// them everywhere else.
pub fn ingest(dir: &DataDir) -> anyhow::Result<Arc<ServerConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca_cert(dir)?)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()?;
    let (chain, key) = identity(dir, "ingest")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Web: plain server authentication, HTTP/2 or HTTP/1.1.
pub fn web(dir: &DataDir) -> anyhow::Result<Arc<ServerConfig>> {
    let (chain, key) = identity(dir, "web")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
