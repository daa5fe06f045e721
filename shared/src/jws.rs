//! Signed reports: JWS compact serialisation (RFC 7515) with Ed25519.
//!
//! ```text
//! BASE64URL(header) "." BASE64URL(report JSON) "." BASE64URL(Ed25519 signature)
//! header = {"alg":"EdDSA","cty":"application/vnd.seahawks.report+json","kid":<sha256 of leaf>,"x5c":[leaf, CA]}
//! ```
//!
//! Verification works on the exact bytes received: the signing input is sliced out of the
//! input, never re-serialised, and the payload is parsed only once its signature holds.
//! The `x5c` chain must lead to one of the CAs the [`Verifier`] trusts (more than one while the
//! nester's CA is being rotated); the CA in the chain is only a hint for offline readers,
//! never trusted by itself.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::{self, IdentityError};
use crate::protocol::REPORT_CONTENT_TYPE;
use crate::report::{Report, ReportError};

/// The algorithm name we write (RFC 8037, known to most JOSE libraries).
pub const ALG_EDDSA: &str = "EdDSA";
/// The fully-specified name from RFC 9864, accepted when verifying.
pub const ALG_ED25519: &str = "Ed25519";
/// A larger protected header is refused before it is parsed.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    x5c: Vec<String>,
    #[serde(default, skip_serializing)]
    crit: Option<serde_json::Value>,
    #[serde(default, skip_serializing)]
    b64: Option<serde_json::Value>,
}

/// Why a signed report was refused. [`VerifyError::code`] gives a stable machine name.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed JWS: {0}")]
    Malformed(String),
    #[error("unsupported JWS algorithm `{0}` (expected EdDSA or Ed25519)")]
    UnsupportedAlgorithm(String),
    #[error("unsupported JWS header: {0}")]
    UnsupportedHeader(String),
    #[error("JWS header carries no signer certificate (x5c)")]
    MissingCertificate,
    #[error("signer certificate is not trusted: {0:?}")]
    UntrustedCertificate(webpki::Error),
    #[error("JWS kid does not match the signer certificate")]
    KeyIdMismatch,
    #[error("signature does not verify against the signer certificate")]
    BadSignature,
    #[error("signer certificate: {0}")]
    Identity(#[from] IdentityError),
    #[error("report names probe {report} but was signed by probe {certificate}")]
    ProbeMismatch { certificate: Uuid, report: Uuid },
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl VerifyError {
    /// Stable error code for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_jws",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::UnsupportedHeader(_) => "unsupported_header",
            Self::MissingCertificate => "missing_certificate",
            Self::UntrustedCertificate(_) => "untrusted_certificate",
            Self::KeyIdMismatch => "key_id_mismatch",
            Self::BadSignature => "bad_signature",
            Self::Identity(_) => "no_probe_identity",
            Self::ProbeMismatch { .. } => "probe_mismatch",
            Self::Report(ReportError::UnsupportedVersion(_)) => "unsupported_schema_version",
            Self::Report(_) => "invalid_report",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("private key is not an Ed25519 PKCS#8 key")]
    BadKey,
    #[error("certificate chain is empty")]
    EmptyChain,
    #[error("leaf certificate is not valid X.509")]
    BadCertificate,
    #[error("private key does not match the leaf certificate")]
    KeyMismatch,
    #[error("report cannot be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// Signs reports with a probe's key; the chain goes into every header.
pub struct Signer {
    key: Ed25519KeyPair,
    header_b64: String,
}

impl Signer {
    /// `pkcs8` is the probe's Ed25519 private key, `chain` its certificate first, then the CA.
    pub fn new(pkcs8: &[u8], chain: &[CertificateDer<'_>]) -> Result<Self, SignerError> {
        let key = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SignerError::BadKey)?;
        let leaf = chain.first().ok_or(SignerError::EmptyChain)?;
        let (_, cert) = X509Certificate::from_der(leaf).map_err(|_| SignerError::BadCertificate)?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(SignerError::KeyMismatch);
        }
        let header = Header {
            alg: ALG_EDDSA.into(),
            cty: Some(REPORT_CONTENT_TYPE.into()),
            kid: Some(identity::fingerprint(leaf)),
            x5c: chain.iter().map(|c| STANDARD.encode(c)).collect(),
            crit: None,
            b64: None,
        };
        let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        Ok(Self { key, header_b64 })
    }

    /// Signs arbitrary payload bytes.
    pub fn sign(&self, payload: &[u8]) -> String {
        let mut jws = format!("{}.{}", self.header_b64, URL_SAFE_NO_PAD.encode(payload));
        let signature = self.key.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        jws
    }

    /// Serialises and signs a report.
    pub fn sign_report(&self, report: &Report) -> Result<String, SignerError> {
        Ok(self.sign(&serde_json::to_vec(report)?))
    }
}

/// A report whose signature, chain and probe binding all hold.
#[derive(Debug)]
pub struct VerifiedReport {
    pub report: Report,
    /// The probe named in the signer certificate (equal to `report.probe_id`).
    pub probe_id: Uuid,
    /// SHA-256 of the signer certificate.
    pub kid: String,
    /// The payload, decoded: the exact JSON the probe signed, which `report` was parsed from.
    pub payload: Vec<u8>,
}

/// Verifies signed reports against the trusted CA certificates.
pub struct Verifier {
    roots: RwLock<Vec<CertificateDer<'static>>>,
    /// Leaf certificates that already chained to the CA, by SHA-256: chain building and the
    /// CA's signature check are the costliest part of verification and their result does not
    /// change. Validity dates are still checked against `now` on every use.
    trusted: Mutex<HashMap<String, TrustedLeaf>>,
}

/// Most leaves remembered; the cache starts over when full (a fleet has one leaf per probe).
const TRUSTED_LEAVES: usize = 16_384;

struct TrustedLeaf {
    probe_id: Result<Uuid, IdentityError>,
    not_before: u64,
    not_after: u64,
}

impl Verifier {
    pub fn new(ca: CertificateDer<'static>) -> Result<Self, VerifyError> {
        Self::with_roots(vec![ca])
    }

    /// Trusts every one of `roots` (a CA rotation's overlap trusts the old and the new).
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Result<Self, VerifyError> {
        check_roots(&roots)?;
        Ok(Self {
            roots: RwLock::new(roots),
            trusted: Mutex::new(HashMap::new()),
        })
    }

    /// Trusts `roots` from now on, forgetting every leaf that chained to the previous ones (a
    /// retired CA's leaves must chain again, and fail).
    pub fn set_roots(&self, roots: Vec<CertificateDer<'static>>) -> Result<(), VerifyError> {
        check_roots(&roots)?;
        if let (Ok(mut current), Ok(mut trusted)) = (self.roots.write(), self.trusted.lock()) {
            *current = roots;
            trusted.clear();
        }
        Ok(())
    }

    /// Verifies `jws` as of `now` (the time the chain must be valid at).
    pub fn verify(&self, jws: &[u8], now: UnixTime) -> Result<VerifiedReport, VerifyError> {
        let jws = jws.trim_ascii_end();
        let malformed = |m: &str| VerifyError::Malformed(m.to_string());
        let Some((header_b64, payload_b64, signature_b64)) = compact_parts(jws) else {
            return Err(malformed(
                "expected three base64url parts separated by dots",
            ));
        };
        if header_b64.len() > MAX_HEADER_BYTES {
            return Err(malformed("protected header too large"));
        }
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| malformed("protected header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header_json)
            .map_err(|e| VerifyError::Malformed(format!("protected header: {e}")))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| malformed("signature is not base64url"))?;

        if header.alg != ALG_EDDSA && header.alg != ALG_ED25519 {
            return Err(VerifyError::UnsupportedAlgorithm(header.alg));
        }
        if header.crit.is_some() {
            return Err(VerifyError::UnsupportedHeader(
                "`crit` is not supported".into(),
            ));
        }
        if header.b64.is_some() {
            return Err(VerifyError::UnsupportedHeader(
                "`b64` is not supported".into(),
            ));
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|c| c != REPORT_CONTENT_TYPE)
        {
            return Err(VerifyError::UnsupportedHeader(format!(
                "content type must be {REPORT_CONTENT_TYPE}"
            )));
        }

        let chain = header
            .x5c
            .iter()
            .map(|c| STANDARD.decode(c).map(CertificateDer::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| malformed("x5c entry is not base64"))?;
        let (leaf_der, intermediates) =
            chain.split_first().ok_or(VerifyError::MissingCertificate)?;
        let leaf =
            webpki::EndEntityCert::try_from(leaf_der).map_err(VerifyError::UntrustedCertificate)?;
        let fingerprint = identity::fingerprint(leaf_der);
        let probe_id = match self.trusted_leaf(&fingerprint, now) {
            Some(probe_id) => probe_id,
            None => {
                // Held through `remember`, so a leaf is never cached under roots replaced meanwhile.
                let roots = self
                    .roots
                    .read()
                    .map_err(|_| VerifyError::Malformed("verifier poisoned".into()))?;
                let anchors = roots
                    .iter()
                    .map(|ca| webpki::anchor_from_trusted_cert(ca))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(VerifyError::UntrustedCertificate)?;
                leaf.verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &anchors,
                    intermediates,
                    now,
                    webpki::KeyUsage::client_auth(),
                    None,
                    None,
                )
                .map_err(VerifyError::UntrustedCertificate)?;
                self.remember(fingerprint.clone(), leaf_der)
            }
        };
        if header.kid.as_deref() != Some(fingerprint.as_str()) {
            return Err(VerifyError::KeyIdMismatch);
        }

        let signing_input = &jws[..header_b64.len() + 1 + payload_b64.len()];
        leaf.verify_signature(webpki::aws_lc_rs::ED25519, signing_input, &signature)
            .map_err(|_| VerifyError::BadSignature)?;

        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| malformed("payload is not base64url"))?;
        let report = Report::from_json(&payload)?;
        let probe_id = probe_id?;
        if report.probe_id != probe_id {
            return Err(VerifyError::ProbeMismatch {
                certificate: probe_id,
                report: report.probe_id,
            });
        }
        Ok(VerifiedReport {
            report,
            probe_id,
            kid: fingerprint,
            payload,
        })
    }

    /// The probe of a leaf that chained before and is within its validity dates at `now`.
    fn trusted_leaf(
        &self,
        fingerprint: &str,
        now: UnixTime,
    ) -> Option<Result<Uuid, IdentityError>> {
        let now = now.as_secs();
        let trusted = self.trusted.lock().ok()?;
        let leaf = trusted.get(fingerprint)?;
        (leaf.not_before <= now && now <= leaf.not_after).then(|| leaf.probe_id.clone())
    }

    /// Records a leaf that just chained to the CA; returns the probe it names.
    fn remember(&self, fingerprint: String, leaf_der: &[u8]) -> Result<Uuid, IdentityError> {
        let probe_id = identity::probe_id_from_cert(leaf_der);
        if let (Some((not_before, not_after)), Ok(mut trusted)) =
            (identity::validity(leaf_der), self.trusted.lock())
        {
            if trusted.len() >= TRUSTED_LEAVES {
                trusted.clear();
            }
            trusted.insert(
                fingerprint,
                TrustedLeaf {
                    probe_id: probe_id.clone(),
                    not_before,
                    not_after,
                },
            );
        }
        probe_id
    }
}

fn check_roots(roots: &[CertificateDer<'static>]) -> Result<(), VerifyError> {
    if roots.is_empty() {
        return Err(VerifyError::MissingCertificate);
    }
    for ca in roots {
        webpki::anchor_from_trusted_cert(ca).map_err(VerifyError::UntrustedCertificate)?;
    }
    Ok(())
}

/// The payload bytes of a JWS that was verified before (for example when it was stored),
/// without verifying it again.
pub fn payload_unverified(jws: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let (_, payload_b64, _) = compact_parts(jws)
        .ok_or_else(|| VerifyError::Malformed("expected three base64url parts".into()))?;
    URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| VerifyError::Malformed("payload is not base64url".into()))
}

/// The header, payload and signature of a compact JWS: exactly two dots. Found with
/// `memchr`, since a report's payload is tens of kilobytes.
pub fn compact_parts(jws: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut dots = memchr::memchr_iter(b'.', jws);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return None;
    };
    Some((&jws[..first], &jws[first + 1..second], &jws[second + 1..]))
}

#[cfg(test)]
mod tests;
