//! The certificate a TLS listener presents, replaced whole while the listener serves: a
//! rustls certificate resolver over a swappable chain and key. A handshake takes whichever is
//! current when it starts; connections made before a swap keep the session they have. Used
//! by the renewal of the nester's own certificates and by the reload of an operator's
//! certificate files.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug)]
pub struct ServedCert {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

/// A chain and its key from PEM text, checked to fit each other.
fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    anyhow::ensure!(!chain.is_empty(), "no certificate");
    CertifiedKey::from_der(chain, key, provider).context("the key does not fit the certificate")
}

fn from_pem(
    cert: &[u8],
    key: &[u8],
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .context("not a PEM certificate chain")?;
    let key = PrivateKeyDer::from_pem_slice(key).context("not a PEM private key")?;
    Ok((chain, key))
}

impl ServedCert {
    /// Serves the chain and key in these PEM files.
    pub fn load(
        cert: &Path,
        key: &Path,
        provider: Arc<CryptoProvider>,
    ) -> anyhow::Result<Arc<Self>> {
        let current = Self::read(cert, key, &provider)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(current)),
            provider,
        }))
    }

    fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
        let chain_pem = std::fs::read(cert)
            .with_context(|| format!("cannot read the certificate chain {}", cert.display()))?;
        let key_pem = std::fs::read(key)
            .with_context(|| format!("cannot read the private key {}", key.display()))?;
        let (chain, private) = from_pem(&chain_pem, &key_pem)
            .with_context(|| format!("{} and {}", cert.display(), key.display()))?;
        certified(chain, private, provider)
            .with_context(|| format!("{} and {}", cert.display(), key.display()))
    }

    /// Serves `cert` and `key` (PEM) from the next handshake on; refused, and the current
    /// pair kept, when they are not a valid pair.
    pub fn replace(&self, cert: &str, key: &str) -> anyhow::Result<()> {
        let (chain, private) = from_pem(cert.as_bytes(), key.as_bytes())?;
        self.set(certified(chain, private, &self.provider)?);
        Ok(())
    }

    /// Serves the pair in these files again (an operator replaced them); the current pair
    /// stays when they do not load.
    pub fn reload(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        self.set(Self::read(cert, key, &self.provider)?);
        Ok(())
    }

    fn set(&self, pair: CertifiedKey) {
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(pair);
        }
    }

    /// The whole chain served now, the end-entity certificate first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .map(|c| c.cert.clone())
            .unwrap_or_default()
    }

    /// The end-entity certificate served now.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.cert.first().cloned())
    }
}

impl ResolvesServerCert for ServedCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}
