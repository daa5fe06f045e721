//! One TCP connect probe, with the port states nmap uses for a connect scan.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use shared::report::PortState;
use tokio::net::TcpStream;

/// Probes one port. `Err` means the local machine could not even try (out of file
/// descriptors, no route configured...), which must never be reported as `filtered`.
pub async fn probe(addr: SocketAddr, timeout: Duration, retries: u32) -> io::Result<PortState> {
    for _ in 0..=retries {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => return Ok(PortState::Open),
            Ok(Err(e)) => match classify(&e) {
                Some(state) => return Ok(state),
                None => return Err(e),
            },
            Err(_elapsed) => continue,
        }
    }
    Ok(PortState::Filtered)
}

/// What a failed connect says about the port, or `None` when it says nothing about it.
fn classify(e: &io::Error) -> Option<PortState> {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Some(PortState::Closed),
        // An ICMP unreachable from the path: nmap calls this filtered.
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            Some(PortState::Filtered)
        }
        io::ErrorKind::TimedOut => Some(PortState::Filtered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_and_closed_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = Duration::from_secs(2);
        assert_eq!(probe(open, t, 0).await.unwrap(), PortState::Open);
        assert_eq!(probe(closed, t, 0).await.unwrap(), PortState::Closed);
    }

    #[test]
    fn local_failures_are_not_port_states() {
        assert_eq!(classify(&io::Error::from_raw_os_error(24)), None); // EMFILE
        assert_eq!(
            classify(&io::ErrorKind::ConnectionRefused.into()),
            Some(PortState::Closed)
        );
    }
}
