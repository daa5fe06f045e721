//! HTTPS plumbing the benchmarks share: a kept-alive client connection, probes posting
//! signed reports, and the accept loop of the bare servers they compare the nester with.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::bail;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP/1.1 connection over TLS to `addr` (loopback, `TCP_NODELAY`), kept alive.
pub async fn connect<B>(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = TlsConnector::from(tls)
        .connect(ServerName::try_from("127.0.0.1")?, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Posts one signed report; anything but 201 Created is an error.
pub async fn post_report(sender: &mut SendRequest<Full<Bytes>>, jws: Bytes) -> anyhow::Result<()> {
    sender.ready().await?;
    let request = Request::post(shared::protocol::REPORTS_PATH)
        .header("host", "127.0.0.1")
        .header("content-type", shared::protocol::JWS_MEDIA_TYPE)
        .body(Full::new(jws))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::CREATED {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// Posts every report of every probe (its client configuration, its reports in order), one
/// task per probe; over one kept-alive connection per probe, or a new one per report.
/// Clients and server share the process's CPU time, so only the difference between two
/// servers' figures means something.
pub async fn post_reports(
    addr: SocketAddr,
    work: Vec<(Arc<rustls::ClientConfig>, Vec<Bytes>)>,
    keep_alive: bool,
) -> anyhow::Result<crate::cpu::Rate> {
    let total: usize = work.iter().map(|(_, r)| r.len()).sum();
    let meter = crate::cpu::Meter::start()?;
    let tasks: Vec<_> = work
        .into_iter()
        .map(|(client, reports)| {
            tokio::spawn(async move {
                let mut sender = connect(addr, client.clone()).await?;
                for jws in reports {
                    if !keep_alive {
                        sender = connect(addr, client.clone()).await?;
                    }
                    post_report(&mut sender, jws).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    meter.rate(total)
}

/// Serves `service` over TLS on a loopback port, one task per connection, as the nester's
/// listeners do; returns the address.
pub async fn serve_tls<S, B>(acceptor: TlsAcceptor, service: S) -> anyhow::Result<SocketAddr>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, service) = (acceptor.clone(), service.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
