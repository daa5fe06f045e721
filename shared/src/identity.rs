//! How a probe's identity is bound into its X.509 certificate.
//!
//! A harvester's client certificate carries exactly one subject alternative name of type URI,
//! `urn:seahawks:probe:<uuid>`. Both the TLS layer (who is connected) and the report verifier
//! (who signed) read the probe id from there, never from the common name.

use aws_lc_rs::digest;
use uuid::Uuid;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Prefix of the SAN URI that names a probe.
pub const PROBE_URI_PREFIX: &str = "urn:seahawks:probe:";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("certificate is not valid DER X.509")]
    BadCertificate,
    #[error("certificate names no probe (no `{PROBE_URI_PREFIX}<uuid>` SAN URI)")]
    NoProbeId,
    #[error("certificate names more than one probe")]
    SeveralProbeIds,
    #[error("certificate SAN URI `{0}` does not hold a valid probe UUID")]
    BadProbeId(String),
}

/// The SAN URI for a probe id.
pub fn probe_uri(probe_id: Uuid) -> String {
    format!("{PROBE_URI_PREFIX}{probe_id}")
}

/// Reads the probe id out of a DER certificate.
pub fn probe_id_from_cert(der: &[u8]) -> Result<Uuid, IdentityError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdentityError::BadCertificate)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::BadCertificate)?;
    let mut found = None;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        let Some(id) = uri.strip_prefix(PROBE_URI_PREFIX) else {
            continue;
        };
        let id = Uuid::try_parse(id).map_err(|_| IdentityError::BadProbeId(uri.to_string()))?;
        if found.replace(id).is_some() {
            return Err(IdentityError::SeveralProbeIds);
        }
    }
    found.ok_or(IdentityError::NoProbeId)
}

/// The validity window of a DER certificate, in Unix seconds.
pub fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let v = cert.validity();
    Some((
        u64::try_from(v.not_before.timestamp()).ok()?,
        u64::try_from(v.not_after.timestamp()).ok()?,
    ))
}

/// SHA-256 of a DER certificate, lower-case hex: the key id of a signed report and the pin of a
/// CA certificate.
pub fn fingerprint(der: &[u8]) -> String {
    digest::digest(&digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `leaf` is a probe certificate issued by `ca` and valid at `now` (Unix seconds).
pub fn issued_by(leaf: &[u8], ca: &[u8], now: u64) -> bool {
    let ca = rustls_pki_types::CertificateDer::from(ca);
    let leaf = rustls_pki_types::CertificateDer::from(leaf);
    let (Ok(anchor), Ok(leaf)) = (
        webpki::anchor_from_trusted_cert(&ca),
        webpki::EndEntityCert::try_from(&leaf),
    ) else {
        return false;
    };
    let now = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now));
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        now,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .is_ok()
}
