//! The history benchmark's read load: GETs over kept-alive HTTPS clients, each answer
//! checked, timed into percentiles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use seahawks_tests::peer;

/// `requests` GETs of the paths (round robin) over `clients` kept-alive connections.
/// Returns (p50 ms, p99 ms, requests per second, mean answer bytes).
pub async fn load(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    token: &str,
    paths: Arc<Vec<String>>,
    clients: usize,
    requests: usize,
) -> anyhow::Result<(f64, f64, f64, f64)> {
    let per_client = requests.div_ceil(clients);
    let mut senders = Vec::new();
    for _ in 0..clients {
        senders.push(peer::connect::<Empty<Bytes>>(addr, tls.clone()).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(c, mut sender)| {
            let (paths, auth) = (paths.clone(), format!("Bearer {token}"));
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for n in 0..per_client {
                    let path = &paths[(c + n) % paths.len()];
                    let t = Instant::now();
                    sender.ready().await?;
                    let request = Request::get(path.as_str())
                        .header("host", "127.0.0.1")
                        .header("authorization", &auth)
                        .header("accept-encoding", "gzip")
                        .body(Empty::new())?;
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.into_body().collect().await?.to_bytes();
                    if status != StatusCode::OK {
                        bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
                    }
                    // Like wrk and h2load, the clients do not inflate every answer (a real
                    // client does that on its own machine); each checks its first one.
                    if n == 0 {
                        check_answer(path, &headers, &body)?;
                    }
                    latencies.push((t.elapsed().as_secs_f64() * 1000.0, body.len()));
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let bytes = all.iter().map(|(_, b)| *b as f64).sum::<f64>() / all.len() as f64;
    let mut all: Vec<f64> = all.into_iter().map(|(ms, _)| ms).collect();
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok((at(0.50), at(0.99), rate, bytes))
}

/// An answer is JSON, or the bare server's greeting; gzipped when it says so.
fn check_answer(path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> anyhow::Result<()> {
    let mut plain = Vec::new();
    let body = match headers.get("content-encoding") {
        Some(coding) if coding == "gzip" => {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut plain)?;
            &plain[..]
        }
        Some(coding) => bail!("{path}: unexpected content-encoding {coding:?}"),
        None => body,
    };
    if body != b"hello" {
        serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| anyhow::anyhow!("{path}: not JSON: {e}"))?;
    }
    Ok(())
}
