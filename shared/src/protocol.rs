//! What both ends of the ingest protocol agree on: every path, the media types, the error body
//! and the refusal codes a harvester acts on.

use serde::{Deserialize, Serialize};

/// Where a harvester posts a signed report (HTTP `POST`, over mTLS).
pub const REPORTS_PATH: &str = "/v1/reports";
/// Where a new harvester posts its enrollment request (no client certificate yet).
pub const ENROLL_PATH: &str = "/v1/enroll";
/// Where an enrolled harvester asks for a fresh certificate (over mTLS).
pub const RENEW_PATH: &str = "/v1/renew";

/// Where an enrolled harvester fetches the CAs to trust (HTTP `GET`, over mTLS).
pub const TRUST_PATH: &str = "/v1/trust";

/// Where an enrolled harvester fetches what its box's sshd trusts and refuses (HTTP `GET`,
/// over mTLS): [`SshTrust`].
pub const SSH_TRUST_PATH: &str = "/v1/ssh/trust";

/// What a harvester box's sshd trusts for user certificates and what it refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTrust {
    /// Rises with every change (a revocation, a CA rotation).
    pub version: u64,
    /// The user CAs' public keys, OpenSSH format, for `TrustedUserCAKeys` (one per line).
    pub user_ca_keys: Vec<String>,
    /// The OpenSSH KRL for `RevokedKeys`, base64.
    pub krl: String,
}

/// Where an enrolled harvester sends its box's SSH host key and gets back a host
/// certificate (HTTP `POST`, over mTLS): [`HostCertificateRequest`] ->
/// [`HostCertificateResponse`].
pub const SSH_HOST_CERTIFICATE_PATH: &str = "/v1/ssh/host-certificate";

/// A harvester box's host key and what it answers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCertificateRequest {
    /// The box's host public key, one OpenSSH line (`/etc/ssh/ssh_host_ed25519_key.pub`).
    pub host_key: String,
    /// The box's names (its host name, configured extra names).
    pub names: Vec<String>,
    /// The box's own addresses (the nester adds the one it sees the harvester come from).
    pub addresses: Vec<std::net::IpAddr>,
    /// The SSH trust version the harvester has installed, if any.
    pub trust_version: Option<u64>,
}

/// The box's host certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCertificateResponse {
    /// One OpenSSH line, for sshd's `HostCertificate`.
    pub certificate: String,
    /// The names and addresses it is valid for.
    pub principals: Vec<String>,
    /// Seconds since the epoch.
    pub valid_before: u64,
}

/// Media type of a JWS in compact serialisation (RFC 7515 §9.2.1).
pub const JWS_MEDIA_TYPE: &str = "application/jose";

/// The `cty` header of a signed report: what the payload is.
pub const REPORT_CONTENT_TYPE: &str = "application/vnd.seahawks.report+json";

// Every error response of the nester, on every listener, is this:
// `{"error":{"code":"...","message":"..."}}`. Its doc comments become the OpenAPI text.
/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `not_found`, `bad_query`.
    pub code: String,
    /// For people; for a 5xx only "internal error" (the detail is in the server log).
    pub message: String,
}

/// The error codes of the ingest listener that a harvester tells apart. Verification
/// failures of a report have theirs in [`VerifyError::code`](crate::VerifyError::code).
pub mod code {
    /// 401: the route needs a probe certificate.
    pub const CLIENT_CERTIFICATE_REQUIRED: &str = "client_certificate_required";
    /// 403: the certificate names a probe this nester never enrolled.
    pub const UNKNOWN_PROBE: &str = "unknown_probe";
    /// 403: the probe was revoked.
    pub const PROBE_REVOKED: &str = "probe_revoked";
    /// 403: the report was signed by another probe than the one connected.
    pub const PROBE_MISMATCH: &str = "probe_mismatch";
    /// 422: the report is dated in the future beyond the tolerated skew.
    pub const TIMESTAMP_IN_FUTURE: &str = "timestamp_in_future";
    /// 422: the report names another site than the probe's.
    pub const SITE_MISMATCH: &str = "site_mismatch";
    /// 409: another report already has this id.
    pub const REPORT_ID_CONFLICT: &str = "report_id_conflict";
    /// 409: another report of this probe already has this sequence number.
    pub const SEQUENCE_CONFLICT: &str = "sequence_conflict";
    /// 400: the certificate request is not a self-signed Ed25519 PKCS#10 request.
    pub const BAD_CSR: &str = "bad_csr";
    /// 401: no such enrollment token, or the wrong secret.
    pub const TOKEN_INVALID: &str = "token_invalid";
    /// 403: the enrollment token expired.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// 403: the enrollment token has no use left.
    pub const TOKEN_USED_UP: &str = "token_used_up";
    /// 403: the enrollment token was revoked.
    pub const TOKEN_REVOKED: &str = "token_revoked";
    /// 429: too many requests from this address; wait and try again.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Not from the nester: a harvester's name for an answer it could not read.
    pub const UNEXPECTED_RESPONSE: &str = "unexpected_response";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_body_is_the_documented_json() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: code::PROBE_REVOKED.into(),
                message: "revoked".into(),
            },
        };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"error":{"code":"probe_revoked","message":"revoked"}}"#
        );
        assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), body);
    }
}
