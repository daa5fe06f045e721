//! The nester's certificate authorities. `x509.rs`: the CA that signs the listeners'
//! certificates and every probe's client certificate.

mod x509;

pub use x509::{
    CA_VALIDITY, Ca, CaCert, CsrError, Issued, PROBE_VALIDITY, ProbeCert, SERVER_VALIDITY,
};
