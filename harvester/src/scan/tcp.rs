//! One TCP connect probe, with the port states nmap uses for a connect scan (`-sT`).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shared::report::PortState;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpStream;

use super::timing::{Timings, within};

/// Longest total wait for local resources (file descriptors, source ports) before giving up.
const MAX_PRESSURE_WAIT: Duration = Duration::from_secs(10);

/// What a probe found. An open port comes with its connection, for banner grabbing.
#[derive(Debug)]
pub enum Outcome {
    Open(TcpStream),
    Closed,
    Filtered,
    /// An ICMP unreachable (host, network, prohibited) or a failed ARP: news about the way to
    /// the host, not about the port. The engine decides what it means for the host.
    Unreachable,
}

impl Outcome {
    /// The port state nmap reports: an unreachable on a host that is up is `filtered`.
    pub fn state(&self) -> PortState {
        match self {
            Self::Open(_) => PortState::Open,
            Self::Closed => PortState::Closed,
            Self::Filtered | Self::Unreachable => PortState::Filtered,
        }
    }
}

/// Probes one port, each attempt under the host's current timeout; a handshake or a reset
/// feeds its round trip back into that timing. Running out of file descriptors or source
/// ports is back-pressure: the probe waits and tries again. `Err` means the local machine
/// could not try at all, which is never reported as a port state.
pub async fn probe(addr: SocketAddr, timings: &Timings, retries: u32) -> io::Result<Outcome> {
    let mut silences = 0;
    let mut waited = Duration::ZERO;
    let record = |started: Instant| timings.sample(addr.ip(), started.elapsed());
    loop {
        let started = Instant::now();
        match within(timings, addr.ip(), connect(addr)).await {
            Some(Ok(stream)) if is_self_connect(&stream) => return Ok(Outcome::Closed),
            Some(Ok(stream)) => {
                record(started);
                return Ok(Outcome::Open(stream));
            }
            Some(Err(e)) => match classify(&e) {
                Verdict::State(PortState::Closed) => {
                    record(started);
                    return Ok(Outcome::Closed);
                }
                Verdict::State(_) => return Ok(Outcome::Filtered),
                Verdict::Unreachable => return Ok(Outcome::Unreachable),
                Verdict::Pressure if waited < MAX_PRESSURE_WAIT => {
                    let pause = Duration::from_millis(5 + u64::from(silences.min(20)) * 5);
                    tokio::time::sleep(pause).await;
                    waited += pause;
                }
                Verdict::Pressure | Verdict::Local => return Err(e),
            },
            None => {
                silences += 1;
                if silences > retries {
                    return Ok(Outcome::Filtered);
                }
            }
        }
    }
}

/// Connects without the reactor when the kernel has settled the attempt within connect(2)
/// itself, as it does for a reset on loopback: then the socket's error is the answer. Other
/// attempts wait for the socket to become writable, as `TcpStream::connect` does. On a loopback
/// scan this saves a third of the system calls per port.
async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    const EINPROGRESS: i32 = 115;
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(socket2::Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Err(e) if e.raw_os_error() != Some(EINPROGRESS) => return Err(e),
        _ => {}
    }
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// On loopback the kernel may pick the target port as the source port of a connection to a
/// port nobody listens on, and connect the socket to itself (TCP simultaneous open). That is
/// a closed port, not an open one.
pub fn is_self_connect(stream: &TcpStream) -> bool {
    matches!((stream.local_addr(), stream.peer_addr()), (Ok(l), Ok(p)) if l == p)
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The answer says something about the port.
    State(PortState),
    /// The answer says something about the way to the host.
    Unreachable,
    /// The machine is out of a resource for now: wait and retry.
    Pressure,
    /// The machine cannot try at all (no route configured, permission...).
    Local,
}

fn classify(e: &io::Error) -> Verdict {
    // Linux errno values: ENFILE, EMFILE (descriptors), EADDRNOTAVAIL (source ports).
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Verdict::State(PortState::Closed),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Verdict::Unreachable,
        io::ErrorKind::TimedOut => Verdict::State(PortState::Filtered),
        io::ErrorKind::AddrNotAvailable => Verdict::Pressure,
        _ if matches!(e.raw_os_error(), Some(ENFILE | EMFILE)) => Verdict::Pressure,
        _ => Verdict::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::timing::Timing;

    #[tokio::test]
    async fn open_and_closed_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let template = Timing::new(Duration::from_millis(100), Duration::from_secs(2));
        let t = Timings::new(&template, [open.ip()]);
        assert_eq!(probe(open, &t, 0).await.unwrap().state(), PortState::Open);
        assert_eq!(
            probe(closed, &t, 0).await.unwrap().state(),
            PortState::Closed
        );
        // Two loopback answers taught the timing: the timeout fell from 2 s to the floor.
        assert_eq!(t.timeout(open.ip()), Duration::from_millis(100));
    }

    /// A socket bound to a port and connected to that same address connects to itself:
    /// exactly what the kernel occasionally does to a scanner on loopback.
    #[tokio::test]
    async fn a_self_connected_socket_is_recognised() {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(free).unwrap();
        let stream = socket
            .connect(free)
            .await
            .expect("Linux allows TCP simultaneous open to itself");
        assert!(is_self_connect(&stream));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let normal = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!is_self_connect(&normal));
    }

    #[test]
    fn resource_exhaustion_is_pressure_not_a_port_state() {
        assert_eq!(
            classify(&io::Error::from_raw_os_error(24)),
            Verdict::Pressure
        ); // EMFILE
        assert_eq!(
            classify(&io::Error::from_raw_os_error(23)),
            Verdict::Pressure
        ); // ENFILE
        assert_eq!(
            classify(&io::Error::from_raw_os_error(99)),
            Verdict::Pressure
        ); // EADDRNOTAVAIL
        assert_eq!(classify(&io::Error::from_raw_os_error(13)), Verdict::Local); // EACCES
        assert_eq!(
            classify(&io::ErrorKind::ConnectionRefused.into()),
            Verdict::State(PortState::Closed)
        );
        assert_eq!(
            classify(&io::Error::from_raw_os_error(113)),
            Verdict::Unreachable
        ); // EHOSTUNREACH
        assert_eq!(
            classify(&io::Error::from_raw_os_error(101)),
            Verdict::Unreachable
        ); // ENETUNREACH
    }
}
