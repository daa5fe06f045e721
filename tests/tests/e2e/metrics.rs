//! Prometheus metrics of the real binaries: `nester serve` and `harvester run` with a
//! `[metrics]` section, scraped over HTTP while a report goes through, each answer checked by
//! `promtool check metrics` (Debian's `prometheus` package; tests/run installs it). And a
//! metrics listener on a public address is refused unless the config says it is deliberate.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{closed_port, free_port, write_harvester_config};
use crate::process::{Daemon, NesterFiles, run, stderr};

/// `GET /metrics` on `addr`, plain HTTP/1.1: the status line and the body.
async fn scrape(addr: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of the sample whose line starts with `series` (name and labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Scrapes `addr` until `series` is at least `want` (at most 60 s); returns that scrape.
async fn wait_for(addr: &str, series: &str, want: f64) -> String {
    let reached = || async {
        let (_, body) = scrape(addr).await;
        match sample(&body, series).is_some_and(|v| v >= want) {
            true => Ok(body),
            false => Err(format!("{series} below {want}:\n{body}")),
        }
    };
    crate::harness::until(Duration::from_secs(60), reached).await
}

/// `promtool check metrics` on `text`: it must find nothing to say.
fn promtool_clean(text: &str, what: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (tests/run installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool on the {what}'s metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[tokio::test]
async fn nester_and_harvester_serve_prometheus_metrics_that_promtool_accepts() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    append(&files.config, "[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let nester = Daemon::spawn("nester", &["serve", "--config", files.config_arg()]);
    let nester_metrics = nester
        .field("metrics")
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();

    let state = temp.path().join("harvester");
    files.enroll(&state).await;
    let harvester_toml = temp.path().join("harvester.toml");
    write_harvester_config(&harvester_toml, &state, "1s", &closed_port().to_string());
    let harvester_metrics = format!("127.0.0.1:{}", free_port());
    append(
        &harvester_toml,
        &format!(
            "[wan]\ntargets = [\"127.0.0.1\"]\nprobes = 2\ninterval_ms = 10\n\
             [metrics]\nlisten = \"{harvester_metrics}\"\n\
             [ssh]\ntrusted_user_ca_keys = {:?}\nrevoked_keys = {:?}\n",
            temp.path().join("user_ca.pub"),
            temp.path().join("revoked.krl"),
        ),
    );
    let harvester = Daemon::spawn(
        "harvester",
        &["run", "--config", harvester_toml.to_str().unwrap()],
    );

    // Garbage on the ingest port: a handshake failure, counted by reason.
    let mut garbage = tokio::net::TcpStream::connect(files.ingest).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), garbage.read_to_end(&mut sink)).await;

    // Two reports stored, as both ends count them.
    let stored = "seahawks_nester_reports_received_total{result=\"stored\"}";
    let text = wait_for(&nester_metrics, stored, 2.0).await;
    let (head, _) = scrape(&nester_metrics).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for series in [
        "seahawks_nester_build_info{version=\"",
        "seahawks_nester_http_request_duration_seconds_bucket{listener=\"ingest\",route=\"/v1/reports\",le=\"",
        "seahawks_nester_db_commit_batch_jobs_bucket{le=\"",
        "seahawks_nester_db_commit_duration_seconds_count",
        "seahawks_nester_connections_active{listener=\"ingest\"}",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "seahawks_nester_tls_handshake_failures_total{listener=\"ingest\",reason=\"not_tls\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(sample(&text, "seahawks_nester_wan_samples_received_total").unwrap() >= 2.0);
    assert_eq!(
        sample(&text, "seahawks_nester_probes{status=\"online\"}"),
        Some(1.0)
    );
    assert!(sample(&text, "seahawks_nester_db_size_bytes").unwrap() > 4096.0);
    assert_eq!(sample(&text, "seahawks_nester_bans_active"), Some(0.0));
    // The harvester keeps its box's SSH trust: it holds the current one from its second
    // fetch (it says what it holds when it fetches).
    let current = "seahawks_nester_ssh_harvesters{holds=\"current\"}";
    let text = wait_for(&nester_metrics, current, 1.0).await;
    assert_eq!(
        sample(&text, "seahawks_nester_ssh_trust_version"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "seahawks_nester_ssh_harvesters{holds=\"failing\"}"),
        Some(0.0)
    );
    promtool_clean(&text, "nester");

    let delivered = "seahawks_harvester_reports_delivered_total";
    let text = wait_for(&harvester_metrics, delivered, 2.0).await;
    assert!(sample(&text, "seahawks_harvester_scan_duration_seconds_count").unwrap() >= 2.0);
    assert_eq!(sample(&text, "seahawks_harvester_hosts_up"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "seahawks_harvester_wan_loss_ratio{target=\"127.0.0.1\"}"
        ),
        Some(0.0)
    );
    let rtt = sample(
        &text,
        "seahawks_harvester_wan_rtt_median_seconds{target=\"127.0.0.1\"}",
    )
    .unwrap();
    assert!(rtt > 0.0 && rtt < 1.0, "{rtt}");
    let expiry = sample(
        &text,
        "seahawks_harvester_certificate_expiry_timestamp_seconds",
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!(expiry > now + 86_400.0, "{expiry} vs {now}");
    assert!(
        sample(&text, "seahawks_harvester_spool_reports").is_some(),
        "{text}"
    );
    promtool_clean(&text, "harvester");

    // No label names a probe, a client or a scanned host other than the configured targets.
    let probe_id = harvester::state::Identity::load(&state)
        .unwrap()
        .probe_id
        .to_string();
    for text in [
        scrape(&nester_metrics).await.1,
        scrape(&harvester_metrics).await.1,
    ] {
        assert!(!text.contains(&probe_id), "{text}");
        assert!(
            !text.contains("client_ip") && !text.contains("address="),
            "{text}"
        );
    }
    harvester.stop("-TERM");
    nester.stop("-TERM");
}

#[test]
fn a_metrics_listener_on_a_public_address_is_refused_unless_allowed() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    append(&files.config, "[metrics]\nlisten = \"0.0.0.0:0\"\n");
    let out = run("nester", &["serve", "--config", files.config_arg()]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("allow_public") && said.contains("0.0.0.0:0"),
        "{said}"
    );

    let harvester_toml = temp.path().join("harvester.toml");
    write_harvester_config(&harvester_toml, &temp.path().join("h"), "1s", "1");
    append(&harvester_toml, "[metrics]\nlisten = \"[::]:9465\"\n");
    let out = run(
        "harvester",
        &["run", "--config", harvester_toml.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("allow_public") && said.contains("[::]:9465"),
        "{said}"
    );
}
