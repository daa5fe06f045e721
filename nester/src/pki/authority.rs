//! The CAs the running nester works with, read from the data directory: the one that issues,
//! the one being retired during a rotation (still trusted, with the cross-certificate that
//! vouches for the new one), and the retired ones (only for `/ca.pem`). Replaced whole when a
//! rotation starts or ends ([`Authorities`]).

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use shared::trust::{SignedTrust, TrustBundle, TrustSignature};

use super::rotation::{self, Rotation};
use super::{Ca, CaCert};
use crate::datadir::DataDir;

pub struct Authority {
    /// Signs every new certificate.
    pub issuing: Ca,
    /// During a rotation: the CA being retired, and the new CA's certificate signed by it.
    previous: Option<(Ca, CaCert)>,
    retired: Vec<CaCert>,
    pub rotation: Option<Rotation>,
    /// What `GET /v1/trust` answers, signed once.
    trust: SignedTrust,
}

impl Authority {
    pub fn load(dir: &DataDir) -> anyhow::Result<Self> {
        let issuing = Ca::load(dir)?;
        let rotation = rotation::current(dir)?;
        let previous = match &rotation {
            Some(_) => Some((
                Ca::load_from(&dir.previous_ca_cert(), &dir.previous_ca_key())?,
                CaCert::load_from(&dir.cross_cert())?,
            )),
            None => None,
        };
        let retired = rotation::retired_cas(dir)?;
        let mut signers = vec![&issuing];
        signers.extend(previous.as_ref().map(|(ca, _)| ca));
        let trusted: Vec<_> = signers.iter().map(|ca| ca.cert.der.clone()).collect();
        let bundle = TrustBundle::new(&trusted).ok_or_else(|| anyhow::anyhow!("no CA"))?;
        let text = serde_json::to_string(&bundle)?;
        let signatures = signers
            .iter()
            .map(|ca| {
                Ok(TrustSignature {
                    ca_sha256: ca.cert.fingerprint(),
                    signature: STANDARD.encode(ca.sign(text.as_bytes())?),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            issuing,
            previous,
            retired,
            rotation,
            trust: SignedTrust {
                bundle: text,
                signatures,
            },
        })
    }

    /// The CAs whose certificates are accepted: the issuing one, and the previous one during a
    /// rotation.
    pub fn trusted(&self) -> Vec<CertificateDer<'static>> {
        let mut cas = vec![self.issuing.cert.der.clone()];
        cas.extend(self.previous.as_ref().map(|(ca, _)| ca.cert.der.clone()));
        cas
    }

    /// What follows a listener's certificate in its chain: the issuing CA, and during a
    /// rotation the cross-certificate and the previous CA, so that a peer trusting only the
    /// previous CA verifies it too.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![self.issuing.cert.der.clone()];
        if let Some((previous, cross)) = &self.previous {
            chain.push(cross.der.clone());
            chain.push(previous.cert.der.clone());
        }
        chain
    }

    /// [`Self::chain`] as PEM.
    pub fn chain_pem(&self) -> String {
        let mut chain = self.issuing.cert.pem.to_string();
        if let Some((previous, cross)) = &self.previous {
            chain.push_str(&cross.pem);
            chain.push_str(&previous.cert.pem);
        }
        chain
    }

    /// `/ca.pem`: every CA that ever signed a certificate here, the issuing one first, so that
    /// any stored report verifies offline.
    pub fn bundle_pem(&self) -> String {
        self.every_ca().iter().map(|ca| ca.pem.as_ref()).collect()
    }

    /// Every CA that ever signed a certificate here, the issuing one first, each once.
    pub fn every_ca(&self) -> Vec<&CaCert> {
        let mut every: Vec<&CaCert> = Vec::new();
        let all = std::iter::once(&self.issuing.cert)
            .chain(self.previous.as_ref().map(|(ca, _)| &ca.cert))
            .chain(&self.retired);
        for ca in all {
            if !every.iter().any(|seen| seen.der == ca.der) {
                every.push(ca);
            }
        }
        every
    }

    pub fn retired(&self) -> &[CaCert] {
        &self.retired
    }

    /// The previous CA, during a rotation.
    pub fn previous(&self) -> Option<&CaCert> {
        self.previous.as_ref().map(|(ca, _)| &ca.cert)
    }

    pub fn trust(&self) -> &SignedTrust {
        &self.trust
    }

    /// Tells two loads apart: changes when the trusted or retired CAs change.
    pub fn stamp(&self) -> String {
        let mut stamp: Vec<String> = self
            .trusted()
            .iter()
            .map(|c| shared::identity::fingerprint(c))
            .collect();
        stamp.push(self.retired.len().to_string());
        stamp.join(",")
    }
}

/// The current [`Authority`], replaced whole.
pub struct Authorities {
    current: RwLock<Arc<Authority>>,
}

impl Authorities {
    pub fn new(authority: Authority) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(authority)),
        })
    }

    pub fn get(&self) -> Arc<Authority> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, authority: Authority) {
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(authority),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(authority),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::PROBE_VALIDITY;
    use rcgen::{CertificateParams, KeyPair, PKCS_ED25519};
    use rustls_pki_types::UnixTime;
    use rustls_pki_types::pem::PemObject;
    use time::{Duration, OffsetDateTime};

    fn probe_leaf(ca: &Ca) -> CertificateDer<'static> {
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let csr = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let cert = ca
            .sign_probe_csr(
                &csr,
                uuid::Uuid::new_v4(),
                PROBE_VALIDITY,
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()
    }

    /// The heart of a rotation no peer notices: during the overlap, a certificate from the new
    /// CA verifies for a peer that trusts only the old CA (through the cross-certificate in the
    /// chain), and for one that trusts only the new CA; the trust bundle is signed by both.
    #[test]
    fn during_the_overlap_either_ca_alone_verifies_the_new_chain() {
        let temp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(temp.path().join("n"));
        crate::cli::init::init(&dir, &[]).unwrap();
        let old = CaCert::load(&dir).unwrap();
        rotation::rotate(&dir, OffsetDateTime::now_utc(), Duration::days(30)).unwrap();
        let authority = Authority::load(&dir).unwrap();
        assert_eq!(authority.trusted().len(), 2);
        assert_eq!(authority.previous().unwrap().der, old.der);

        let leaf = probe_leaf(&authority.issuing);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(authority.chain_pem().as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let verifies_with = |root: &CertificateDer<'static>, chain: &[CertificateDer<'static>]| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(root.clone()).unwrap();
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap()
                .verify_client_cert(&leaf, chain, UnixTime::now())
                .is_ok()
        };
        assert!(verifies_with(&old.der, &chain));
        assert!(verifies_with(&authority.issuing.cert.der, &chain));
        assert!(
            !verifies_with(&old.der, &chain[..1]),
            "only through the cross-certificate"
        );
        let trust = authority.trust();
        assert!(trust.open(std::slice::from_ref(&old.der)).is_ok());
        let bundle = trust
            .open(std::slice::from_ref(&authority.issuing.cert.der))
            .unwrap();
        assert_eq!(bundle.issuing_sha256, authority.issuing.cert.fingerprint());
        assert_eq!(bundle.cas.len(), 2);

        // Retired: the old CA is only in /ca.pem, and no longer vouches for the new one.
        rotation::retire_if_due(&dir, i64::MAX).unwrap();
        let after = Authority::load(&dir).unwrap();
        assert_eq!(after.trusted(), vec![authority.issuing.cert.der.clone()]);
        assert_ne!(after.stamp(), authority.stamp());
        assert!(after.bundle_pem().contains(old.pem.as_ref()));
        assert_eq!(after.chain_pem(), after.issuing.cert.pem.to_string());
        assert!(after.trust().open(std::slice::from_ref(&old.der)).is_err());
    }
}
