//! The Seahawks wire contract, and nothing else.
//!
//! - [`report`]: the report a harvester sends each scan cycle, with its schema version. The
//!   committed JSON Schema (`schema/report.schema.json`) is generated from these types and a
//!   test keeps the two equal.
//! - [`jws`]: reports travel as JWS compact serialisation (RFC 7515) signed with Ed25519
//!   (`EdDSA`, RFC 8037). The protected header carries the signer's certificate chain in `x5c`,
//!   so anyone holding the nester's CA certificate can verify a report offline.
//! - [`identity`]: how a probe id is bound into its certificate.
//! - [`enroll`]: the enrollment token and the enroll / renew messages.
//! - [`trust`]: the signed bundle of CA certificates a harvester trusts, fetched each cycle,
//!   which carries a CA rotation to every site.
//! - [`protocol`]: every path, the media types, the error body and the refusal codes both
//!   ends agree on.
//! - [`metrics`] (feature `metrics`): the other thing that crosses a wire, to Prometheus: the
//!   `[metrics]` config section and the recorder, the same in the nester and the harvester.
//!
//! Architecture invariant: this crate does no I/O (no files, no sockets, no clock). Callers pass
//! the time in. It must not become a utilities drawer: only what crosses the wire lives here.

pub mod enroll;
pub mod identity;
pub mod jws;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod protocol;
pub mod report;
pub mod trust;

pub use jws::{Signer, VerifiedReport, Verifier, VerifyError};
pub use report::{Report, ReportError, SCHEMA_VERSION};
