//! The web listener with the operator's certificate, and the plain-HTTP listener that only
//! redirects.

use std::path::Path;

use hyper::Method;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::harness::{https, write_nester_config};
use crate::process::{Daemon, run, stderr};

/// The web listener serves the operator's certificate when the config names one (here from
/// another CA), refuses half a pair or a key that does not fit, and otherwise serves the one
/// `nester init` issued.
#[tokio::test]
async fn the_web_listener_serves_the_operators_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    nester::cli::init::init(&nester::datadir::DataDir::new(&data), &[]).unwrap();
    // "The operator's CA": another data directory, whose web certificate we borrow.
    let other = temp.path().join("operator");
    nester::cli::init::init(&nester::datadir::DataDir::new(&other), &[]).unwrap();
    let pem = |dir: &Path, file: &str| dir.join("pki").join(file);
    let ca = |dir: &Path| CertificateDer::from_pem_file(pem(dir, "ca.pem")).unwrap();
    let config = |web: &str| {
        let path = temp.path().join("nester.toml");
        write_nester_config(&path, &data, web);
        path
    };

    let own = config(&format!(
        "cert = {:?}\nkey = {:?}\n",
        pem(&other, "web.pem"),
        pem(&other, "web.key")
    ));
    let nester = Daemon::spawn("nester", &["serve", "--config", own.to_str().unwrap()]);
    let web: std::net::SocketAddr = nester
        .field("dashboard")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let get = |trusted: CertificateDer<'static>| async move {
        https(web, &trusted, None, Method::GET, "/ca.pem", &[], Vec::new()).await
    };
    assert_eq!(get(ca(&other)).await.unwrap().status, 200);
    let err = get(ca(&data)).await.unwrap_err();
    assert!(
        err.contains("tls"),
        "the nester CA's certificate was served: {err}"
    );
    drop(nester);

    for (web, why) in [
        (
            format!("cert = {:?}\n", pem(&other, "web.pem")),
            "needs both `cert` and `key`",
        ),
        (
            format!(
                "cert = {:?}\nkey = {:?}\n",
                pem(&other, "web.pem"),
                pem(&data, "web.key")
            ),
            "does not fit the certificate",
        ),
        (
            format!(
                "cert = {:?}\nkey = {:?}\n",
                "/nonexistent/web.pem",
                pem(&data, "web.key")
            ),
            "cannot read the certificate chain /nonexistent/web.pem",
        ),
    ] {
        let path = config(&web);
        let out = run("nester", &["serve", "--config", path.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(why), "{why}: {}", stderr(&out));
    }
}

/// One plain-HTTP request on `addr`, answered in full (the listener closes after it).
async fn plain_http(addr: &str, request_line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{request_line}\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response.to_ascii_lowercase()
}

/// The optional plain-HTTP listener only redirects, to the configured (or derived) HTTPS
/// address and never to the request's `Host`; the path and query follow, foreign targets
/// do not.
#[tokio::test]
async fn plain_http_only_redirects_to_https() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    nester::cli::init::init(&nester::datadir::DataDir::new(&data), &[]).unwrap();
    let path = temp.path().join("nester.toml");
    write_nester_config(&path, &data, "redirect_http = \"127.0.0.1:0\"\n");
    let nester = Daemon::spawn("nester", &["serve", "--config", path.to_str().unwrap()]);
    // "redirect: http://ADDR/ (to HTTPS)" gives ADDR.
    let plain_addr = |nester: &Daemon| {
        let field = nester.field("redirect");
        let addr = field.trim_start_matches("http://").split('/').next();
        addr.unwrap().to_string()
    };
    let web = nester.field("dashboard");
    let plain = plain_addr(&nester);
    let location = |response: &str| {
        response
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap_or_else(|| panic!("no location: {response}"))
            .trim()
            .to_string()
    };

    let response = plain_http(&plain, "GET /api/v1/probes?limit=5 HTTP/1.1").await;
    assert!(response.starts_with("http/1.1 308"), "{response}");
    assert_eq!(location(&response), format!("{web}api/v1/probes?limit=5"));
    assert!(
        response.contains("x-content-type-options: nosniff"),
        "{response}"
    );
    for foreign in [
        "GET //evil.example/x HTTP/1.1",
        "POST http://evil.example HTTP/1.1",
    ] {
        let response = plain_http(&plain, foreign).await;
        assert!(response.starts_with("http/1.1 308"), "{response}");
        assert_eq!(location(&response), web.to_ascii_lowercase(), "{foreign}");
    }
    drop(nester);

    write_nester_config(
        &path,
        &data,
        "redirect_http = \"127.0.0.1:0\"\npublic_url = \"https://nester.example.net:8443\"\n",
    );
    let nester = Daemon::spawn("nester", &["serve", "--config", path.to_str().unwrap()]);
    let response = plain_http(&plain_addr(&nester), "GET /ca.pem HTTP/1.1").await;
    assert_eq!(
        location(&response),
        "https://nester.example.net:8443/ca.pem"
    );
    drop(nester);

    write_nester_config(&path, &data, "public_url = \"http://nester.example.net\"\n");
    let out = run("nester", &["serve", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("public_url"), "{}", stderr(&out));
}
