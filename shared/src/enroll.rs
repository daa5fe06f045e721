//! Enrollment: the token an administrator hands to a new harvester, and the messages of the
//! enrollment and renewal exchanges.
//!
//! A token is `SHK1.` followed by base64url (no padding) of a JSON object holding the nester's
//! ingest address, the token id and secret, and the SHA-256 of the nester CA certificate. The
//! harvester trusts the first connection only if the CA the server presents has that digest
//! (the kubeadm idea), so the first contact cannot be intercepted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const PREFIX: &str = "SHK1.";
/// Longest token accepted, to refuse garbage before decoding it.
const MAX_TOKEN_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentToken {
    /// The nester's ingest listener, `host:port`.
    pub ingest: String,
    /// Public id of the token (for lookup, listing and revocation).
    pub id: String,
    /// The secret; the nester keeps only its SHA-256.
    pub secret: String,
    /// SHA-256 of the nester CA certificate (DER), lower-case hex.
    pub ca_sha256: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("this is not a Seahawks enrollment token (it should start with `{PREFIX}`)")]
    Prefix,
    #[error("the enrollment token is damaged ({0}); copy it again in full")]
    Damaged(&'static str),
}

impl EnrollmentToken {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a token is always JSON");
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Damaged("too long"));
        }
        let body = text.strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Damaged("not base64url"))?;
        let token: Self =
            serde_json::from_slice(&json).map_err(|_| TokenError::Damaged("bad fields"))?;
        let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(&token.ca_sha256, 64) {
            return Err(TokenError::Damaged("bad CA pin"));
        }
        if token.id.is_empty() || token.secret.is_empty() || token.ingest.is_empty() {
            return Err(TokenError::Damaged("empty field"));
        }
        Ok(token)
    }
}

/// `POST /v1/enroll`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token_id: String,
    pub secret: String,
    /// PKCS#10 request for the harvester's Ed25519 key, PEM.
    pub csr: String,
}

/// `POST /v1/renew` (the probe is known from its client certificate).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    pub csr: String,
}

/// The answer to both: a certificate bound to the probe id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateResponse {
    pub probe_id: Uuid,
    pub site: String,
    /// The probe certificate, PEM.
    pub certificate: String,
    /// The nester CA certificate, PEM.
    pub ca: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> EnrollmentToken {
        EnrollmentToken {
            ingest: "nester.example:9443".into(),
            id: "0123456789abcdef".into(),
            secret: "c2VjcmV0".into(),
            ca_sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn round_trip() {
        let text = token().encode();
        assert!(text.starts_with("SHK1."));
        assert_eq!(
            EnrollmentToken::parse(&format!("  {text}\n")).unwrap(),
            token()
        );
    }

    #[test]
    fn damage_is_named() {
        let text = token().encode();
        assert_eq!(EnrollmentToken::parse("hello"), Err(TokenError::Prefix));
        assert!(matches!(
            EnrollmentToken::parse(&text[..text.len() - 3]),
            Err(TokenError::Damaged(_))
        ));
        assert!(matches!(
            EnrollmentToken::parse(&format!("{text}!")),
            Err(TokenError::Damaged(_))
        ));
        let mut bad_pin = token();
        bad_pin.ca_sha256 = "zz".repeat(32);
        assert_eq!(
            EnrollmentToken::parse(&bad_pin.encode()),
            Err(TokenError::Damaged("bad CA pin"))
        );
        assert!(matches!(
            EnrollmentToken::parse(&"A".repeat(5000)),
            Err(TokenError::Damaged("too long"))
        ));
    }
}
