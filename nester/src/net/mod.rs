//! What every listener shares: the accept loop (`listener.rs`: bans checked first, then the
//! TLS handshake under a timeout, the peer's address and certificate to handlers), the access
//! log every request and refused connection goes to (`access_log/`), and the rustls
//! configurations (`tls.rs`, with `served_cert.rs` and `client_roots.rs`, the certificate
//! and the client CAs swapped while serving); and who the client is behind a trusted reverse proxy
//! (`forwarded.rs`).

pub mod access_log;
pub mod client_roots;
mod forwarded;
pub mod kernel_filter;
pub mod listener;
pub mod served_cert;
pub mod tls;

pub use listener::{Peer, serve};
