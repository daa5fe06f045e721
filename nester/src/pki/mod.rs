//! The nester's certificate authorities. `x509.rs`: the CA that signs the listeners'
//! certificates and every probe's client certificate; `renew.rs`: replacing the listeners'
//! own certificates on disk, crash-safe; `rotation.rs`: replacing the CA itself;
//! `authority.rs`: the CAs the running nester trusts and issues from, swapped by a rotation.

pub mod authority;
pub mod renew;
pub mod rotation;
mod x509;

pub use authority::{Authorities, Authority};
pub use x509::{
    CA_VALIDITY, Ca, CaCert, CsrError, Issued, PROBE_VALIDITY, ProbeCert, SERVER_VALIDITY,
    SERVER_VALIDITY_MAX,
};
