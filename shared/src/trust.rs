//! The trust bundle: which CA certificates a harvester trusts for the nester, fetched over
//! mTLS at every cycle (`GET /v1/trust`). While the nester's CA is being rotated it holds the
//! old and the new CA; once the old one is retired, only the new.
//!
//! The bundle is signed, besides travelling over a TLS connection the harvester authenticated:
//! the JSON text of a [`TrustBundle`] is signed (ECDSA P-256, SHA-256) by every CA it names
//! whose key the nester still holds, and a harvester adopts it only when a signature by a CA it
//! already trusts verifies. A stolen listener key alone cannot teach harvesters a new CA.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::fingerprint;

/// What the nester trusts and issues from now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustBundle {
    /// Changes whenever `cas` changes.
    pub version: String,
    /// SHA-256 of the CA that issues new certificates; a probe whose certificate comes from
    /// another CA renews at once.
    pub issuing_sha256: String,
    /// Every CA certificate to trust, PEM, the issuing one first.
    pub cas: Vec<String>,
}

/// `GET /v1/trust`: the bundle's exact JSON text and its signatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedTrust {
    pub bundle: String,
    pub signatures: Vec<TrustSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustSignature {
    /// SHA-256 of the signing CA's certificate.
    pub ca_sha256: String,
    /// ECDSA P-256 SHA-256 signature (ASN.1 DER) over `bundle`, base64.
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    #[error("the trust bundle is signed by no CA this harvester trusts")]
    Unsigned,
    #[error("the trust bundle is malformed: {0}")]
    Malformed(&'static str),
}

impl TrustBundle {
    /// A bundle of `cas` (DER), the issuing CA first; the version is derived from them.
    pub fn new(cas: &[CertificateDer<'_>]) -> Option<Self> {
        let issuing = fingerprint(cas.first()?);
        let pems: Vec<String> = cas.iter().map(|c| pem(c)).collect();
        let all: Vec<String> = cas.iter().map(|c| fingerprint(c)).collect();
        Some(Self {
            version: fingerprint(all.join(",").as_bytes())[..16].to_string(),
            issuing_sha256: issuing,
            cas: pems,
        })
    }

    /// The CA certificates, DER.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TrustError> {
        let cas = self
            .cas
            .iter()
            .map(|p| CertificateDer::from_pem_slice(p.as_bytes()).map(CertificateDer::into_owned))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TrustError::Malformed("a CA is not a PEM certificate"))?;
        if cas.is_empty() {
            return Err(TrustError::Malformed("no CA"));
        }
        if !cas.iter().any(|c| fingerprint(c) == self.issuing_sha256) {
            return Err(TrustError::Malformed("the issuing CA is not in the bundle"));
        }
        Ok(cas)
    }
}

/// A certificate as PEM text.
pub fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap_or_default());
        text.push('\n');
    }
    text.push_str("-----END CERTIFICATE-----\n");
    text
}

impl SignedTrust {
    /// The bundle, if a signature by one of `trusted` holds over it.
    pub fn open(&self, trusted: &[CertificateDer<'_>]) -> Result<TrustBundle, TrustError> {
        let signed = trusted.iter().any(|ca| {
            let pin = fingerprint(ca);
            self.signatures
                .iter()
                .filter(|s| s.ca_sha256 == pin)
                .any(|s| verifies(ca, self.bundle.as_bytes(), &s.signature))
        });
        if !signed {
            return Err(TrustError::Unsigned);
        }
        let bundle: TrustBundle = serde_json::from_str(&self.bundle)
            .map_err(|_| TrustError::Malformed("not a trust bundle"))?;
        bundle.certificates()?;
        Ok(bundle)
    }
}

fn verifies(ca: &[u8], message: &[u8], signature_b64: &str) -> bool {
    let Ok(signature) = STANDARD.decode(signature_b64) else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(ca) else {
        return false;
    };
    let key = cert.public_key().subject_public_key.data.as_ref();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
        .verify(message, &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, IsCa, KeyPair, SigningKey};

    fn ca() -> (KeyPair, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (key, cert.der().clone())
    }

    fn signed(bundle: &TrustBundle, by: &[(&KeyPair, &CertificateDer<'_>)]) -> SignedTrust {
        let text = serde_json::to_string(bundle).unwrap();
        SignedTrust {
            signatures: by
                .iter()
                .map(|(key, cert)| TrustSignature {
                    ca_sha256: fingerprint(cert),
                    signature: STANDARD.encode(key.sign(text.as_bytes()).unwrap()),
                })
                .collect(),
            bundle: text,
        }
    }

    #[test]
    fn a_bundle_is_adopted_only_when_a_trusted_ca_signed_it() {
        let (old_key, old) = ca();
        let (new_key, new) = ca();
        let bundle = TrustBundle::new(&[new.clone(), old.clone()]).unwrap();
        assert_eq!(bundle.issuing_sha256, fingerprint(&new));
        assert_eq!(
            bundle.certificates().unwrap(),
            vec![new.clone(), old.clone()]
        );

        // Signed by both: a harvester trusting either adopts it.
        let both = signed(&bundle, &[(&old_key, &old), (&new_key, &new)]);
        assert_eq!(both.open(std::slice::from_ref(&old)).unwrap(), bundle);
        assert_eq!(both.open(std::slice::from_ref(&new)).unwrap(), bundle);

        // Signed by the new CA only: a harvester that knows only the old one refuses it.
        let only_new = signed(&bundle, &[(&new_key, &new)]);
        assert_eq!(
            only_new.open(std::slice::from_ref(&old)),
            Err(TrustError::Unsigned)
        );

        // A signature by an untrusted key under a trusted CA's name, or a changed bundle.
        let mut forged = signed(&bundle, &[(&new_key, &new)]);
        forged.signatures[0].ca_sha256 = fingerprint(&old);
        assert_eq!(
            forged.open(std::slice::from_ref(&old)),
            Err(TrustError::Unsigned)
        );
        let mut altered = both.clone();
        altered.bundle = altered.bundle.replace(&bundle.version, "0000000000000000");
        assert_eq!(
            altered.open(std::slice::from_ref(&old)),
            Err(TrustError::Unsigned)
        );
        let mut garbage = both;
        garbage.signatures[0].signature = "%%%".into();
        garbage.signatures.truncate(1);
        assert_eq!(
            garbage.open(std::slice::from_ref(&old)),
            Err(TrustError::Unsigned)
        );
    }

    #[test]
    fn the_version_follows_the_cas() {
        let (_, a) = ca();
        let (_, b) = ca();
        let one = TrustBundle::new(std::slice::from_ref(&a)).unwrap();
        let two = TrustBundle::new(&[a.clone(), b]).unwrap();
        assert_ne!(one.version, two.version);
        assert_eq!(one, TrustBundle::new(&[a]).unwrap());
        assert!(TrustBundle::new(&[]).is_none());
    }
}
