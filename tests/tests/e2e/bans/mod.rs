//! Bans, enforced in the accept loop before any TLS byte: a banned address gets its
//! connection closed without a ServerHello, while others are served through a flood of its
//! connections; failed handshakes get an address banned, longer at each repeat, remembered
//! across a restart; the allow-list is never banned, not even by hand; and slow or
//! distributed guessing on one account raises an alert.

mod command;
mod handshakes;
mod sign_ins;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestNester;

/// Loopback is allow-listed by default; these tests keep only 127.0.0.1 there, so other
/// loopback addresses stand for attackers. Floods stay with the accept loop here (the kernel
/// filter has a test of its own).
async fn nester() -> TestNester {
    TestNester::start_with(|c| {
        c.threats.allow = vec!["127.0.0.1/32".parse().unwrap()];
        c.threats.tls_failures = 3;
        c.threats.kernel_after = 0;
    })
    .await
}

/// Connects from `source` to `to`, sends `bytes`, and returns the first bytes that came
/// back (none when the connection was closed on us or never made; at most 7 s).
async fn exchange(source: &str, to: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let Attempt::Made(mut tcp) = connect_from(source, to, Duration::from_secs(2)).await else {
        return Vec::new();
    };
    let _ = tcp.write_all(bytes).await;
    let mut got = vec![0; 4096];
    match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut got)).await {
        Ok(Ok(n)) => got.truncate(n),
        _ => got.clear(),
    }
    got
}

/// What a connection attempt came to.
enum Attempt {
    Made(TcpStream),
    /// Reset (or refused) by the other end: the nester's accept loop saw it.
    Reset,
    /// No answer within the limit: the SYN was dropped.
    Silent,
}

/// A TCP connection attempt from `source` to `to`, waiting at most `limit`.
async fn connect_from(source: &str, to: SocketAddr, limit: Duration) -> Attempt {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    match tokio::time::timeout(limit, socket.connect(to)).await {
        Ok(Ok(tcp)) => Attempt::Made(tcp),
        Ok(Err(_)) => Attempt::Reset,
        Err(_) => Attempt::Silent,
    }
}

/// A TLS ClientHello as a real client sends it.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

async fn banned_in_time(nester: &TestNester, source: &str) -> bool {
    let refused = || async {
        let hello = exchange(source, nester.web, &client_hello()).await;
        hello.is_empty().then_some(())
    };
    crate::harness::poll(Duration::from_secs(5), refused)
        .await
        .is_some()
}

/// The recorded ban of `prefix` once the database has it (it is written just after the
/// accept loop starts refusing), at its `offences`-th offence: rule and length in ms.
async fn recorded(nester: &TestNester, prefix: &str, offences: i64) -> (String, i64) {
    let recorded = || {
        let row: Option<(String, i64, i64)> = nester
            .sqlite()
            .query_row(
                "SELECT rule, expires_ms - created_ms, offences FROM bans WHERE prefix = ?1",
                [prefix],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok();
        let found = row
            .filter(|(_, _, n)| *n == offences)
            .map(|(rule, length, _)| (rule, length));
        std::future::ready(found)
    };
    let what = format!("ban {offences} of {prefix} recorded");
    crate::harness::within(Duration::from_secs(5), &what, recorded).await
}
