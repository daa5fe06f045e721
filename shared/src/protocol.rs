//! Constants both ends of the ingest protocol agree on.

/// Where a harvester posts a signed report (HTTP `POST`, over mTLS).
pub const REPORTS_PATH: &str = "/v1/reports";

/// Media type of a JWS in compact serialisation (RFC 7515 §9.2.1).
pub const JWS_MEDIA_TYPE: &str = "application/jose";

/// The `cty` header of a signed report: what the payload is.
pub const REPORT_CONTENT_TYPE: &str = "application/vnd.seahawks.report+json";
