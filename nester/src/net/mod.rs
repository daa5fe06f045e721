//! What every listener shares: the accept loop (`listener.rs`: TLS handshake under a timeout,
//! the peer's address and certificate to handlers) and the rustls configurations (`tls.rs`).

pub mod listener;
pub mod tls;

pub use listener::{Peer, serve};
