//! Fake services (binary `fake-services`): small TCP services for scan tests and benchmarks, run inside a network
//! namespace. Each argument is `PORT=KIND[:TEXT]`:
//! - `greet:TEXT`: sends `TEXT\r\n` on connect, like SSH, SMTP or FTP;
//! - `http:SERVER`: answers any request with a 200 and `Server: SERVER`;
//! - `silent`: accepts and says nothing.
//!
//! Binds every port on all addresses, then prints `ready` on standard output. Runs until
//! killed; each connection gets a thread and lives at most a few seconds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

#[derive(Clone)]
enum Kind {
    Greet(String),
    Http(String),
    Silent,
}

fn parse(arg: &str) -> Result<(u16, Kind), String> {
    let (port, kind) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}`: expected PORT=KIND[:TEXT]"))?;
    let port = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port"))?;
    let (kind, text) = kind.split_once(':').unwrap_or((kind, ""));
    let kind = match kind {
        "greet" => Kind::Greet(text.to_string()),
        "http" => Kind::Http(text.to_string()),
        "silent" => Kind::Silent,
        other => return Err(format!("unknown service kind `{other}`")),
    };
    Ok((port, kind))
}

fn serve(mut stream: TcpStream, kind: &Kind) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    match kind {
        Kind::Greet(text) => {
            let _ = write!(stream, "{text}\r\n");
        }
        Kind::Http(server) => {
            let mut buf = [0u8; 1024];
            if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = write!(
                    stream,
                    "HTTP/1.0 200 OK\r\nServer: {server}\r\nContent-Length: 0\r\n\r\n"
                );
            }
        }
        Kind::Silent => {
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf);
        }
    }
}

/// Serves `args` (`PORT=KIND[:TEXT]`) until killed; exits the process on a bad argument.
pub fn run(args: impl IntoIterator<Item = String>) {
    let services: Vec<(u16, Kind)> = match args.into_iter().map(|a| parse(&a)).collect() {
        Ok(services) => services,
        Err(e) => {
            eprintln!("fake-services: {e}");
            std::process::exit(2);
        }
    };
    let mut threads = Vec::new();
    for (port, kind) in services {
        let listener = match TcpListener::bind(("0.0.0.0", port)) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("fake-services: cannot listen on port {port}: {e}");
                std::process::exit(1);
            }
        };
        threads.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kind = kind.clone();
                std::thread::spawn(move || serve(stream, &kind));
            }
        }));
    }
    println!("ready");
    for thread in threads {
        let _ = thread.join();
    }
}
