//! Service banners: what an open port volunteers (SSH, SMTP, FTP...), or its answer to a
//! minimal HTTP `HEAD` on ports where HTTP is usual. Sanitised: printable ASCII, one or two
//! lines, truncated. Never more than `wait` per port.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Ports where the server waits for the client to speak first, and HTTP is the usual tongue.
const HTTP_PORTS: &[u16] = &[
    80, 81, 591, 3000, 5000, 8000, 8008, 8080, 8081, 8088, 8888, 9000,
];
/// Longest banner kept, in characters.
pub const MAX_LEN: usize = 200;

/// Reads the banner of an open port; `None` when the service said nothing in time. A service
/// may send its answer in pieces: reading goes on until a whole line (an HTTP answer: its whole
/// header) has come, the service closes, the buffer is full or `wait` is over, and what came
/// by then is the banner.
pub async fn grab(mut stream: TcpStream, port: u16, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    let http = HTTP_PORTS.contains(&port);
    if http {
        tokio::time::timeout_at(deadline, stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n"))
            .await
            .ok()?
            .ok()?;
    }
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() && !complete(&buf[..len], http) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[len..])).await {
            Ok(Ok(n)) if n > 0 => len += n,
            _ => break, // closed, failed or out of time: keep what came
        }
    }
    sanitize(&buf[..len])
}

/// Whether a banner has come whole: the end of an HTTP header, or of a greeting's first line.
fn complete(bytes: &[u8], http: bool) -> bool {
    if http {
        bytes.windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(2).any(|w| w == b"\n\n")
    } else {
        bytes.contains(&b'\n')
    }
}

/// The useful part of what a service sent: its first line, or for HTTP the status line and
/// the `Server` header. Control and non-ASCII bytes become `.`.
pub fn sanitize(bytes: &[u8]) -> Option<String> {
    let text: String = bytes
        .iter()
        .map(|&b| match b {
            b'\r' | b'\n' => '\n',
            0x20..=0x7e => b as char,
            _ => '.',
        })
        .collect();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    let mut banner = first.to_string();
    if first.starts_with("HTTP/")
        && let Some(server) = lines.find(|l| l.to_ascii_lowercase().starts_with("server:"))
    {
        banner = format!("{first} | {server}");
    }
    if banner.len() > MAX_LEN {
        banner.truncate(MAX_LEN);
        banner.push_str("...");
    }
    Some(banner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn keeps_what_helps_and_cleans_the_rest() {
        assert_eq!(
            sanitize(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").unwrap(),
            "SSH-2.0-OpenSSH_9.2p1 Debian-2"
        );
        assert_eq!(
            sanitize(b"HTTP/1.1 200 OK\r\nDate: x\r\nServer: nginx/1.22.1\r\n\r\n").unwrap(),
            "HTTP/1.1 200 OK | Server: nginx/1.22.1"
        );
        assert_eq!(
            sanitize(b"220 mail ESMTP\x1b[31m\x00evil\r\n").unwrap(),
            "220 mail ESMTP.[31m.evil"
        );
        assert_eq!(sanitize(b"\r\n\r\n"), None);
        assert_eq!(sanitize(b""), None);
        let long = sanitize(&[b'A'; 900]).unwrap();
        assert_eq!(long.len(), MAX_LEN + 3);
    }

    async fn serve(greeting: Option<&'static [u8]>, answer_head: bool) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            if let Some(g) = greeting {
                s.write_all(g).await.unwrap();
            }
            if answer_head {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
                // In pieces, as a server (or TCP) may deliver it.
                for piece in [&b"HTTP/1.0 200 OK\r\nServ"[..], b"er: test-httpd\r\n\r\n"] {
                    s.write_all(piece).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        addr
    }

    #[tokio::test]
    async fn reads_greetings_asks_http_and_waits_bounded() {
        let wait = Duration::from_millis(300);
        let ssh = serve(Some(b"SSH-2.0-Test\r\n"), false).await;
        let got = grab(TcpStream::connect(ssh).await.unwrap(), ssh.port(), wait).await;
        assert_eq!(got.as_deref(), Some("SSH-2.0-Test"));
        // Treated as HTTP because of the port it claims, so it asks first.
        let http = serve(None, true).await;
        let got = grab(TcpStream::connect(http).await.unwrap(), 8080, wait).await;
        assert_eq!(got.as_deref(), Some("HTTP/1.0 200 OK | Server: test-httpd"));
        let silent = serve(None, false).await;
        let started = std::time::Instant::now();
        assert_eq!(
            grab(
                TcpStream::connect(silent).await.unwrap(),
                silent.port(),
                wait
            )
            .await,
            None
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
