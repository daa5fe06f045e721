//! The nester's SSH certificate authority against the real `ssh` and a real `sshd` set up as
//! a harvester box (`TrustedUserCAKeys`, `RevokedKeys`, `AuthorizedPrincipalsFile`,
//! `HostCertificate`): user certificates from the API (`certificates.rs`), the trust and
//! host certificate a harvester installs on its box (`box_trust.rs`), CA rotation across
//! the switch (`rotation.rs`), and the SSH page (`page.rs`). The helpers are here.

mod box_trust;
mod certificates;
mod page;
mod rotation;

use std::path::Path;
use std::process::Command;

use hyper::Method;
use nester::auth::totp;
use nester::db::{Role, Scope};
use seahawks_tests::sshd::{BOX_USER, Sshd};

use crate::client::Response;
use crate::harness::{TestNester, eventually};

/// A user of `role` with TOTP on (when `mfa`), and a read-write API token of theirs.
pub async fn user(nester: &TestNester, name: &str, role: Role, mfa: bool) -> (String, Vec<u8>) {
    nester.add_user(name, role).await;
    let id = nester.user_id(name).await;
    let secret = totp::new_secret().unwrap();
    if mfa {
        nester
            .db()
            .enable_totp(
                nester::db::audit::Actor::cli(),
                id,
                secret.clone(),
                0,
                Vec::new(),
            )
            .await
            .unwrap();
    }
    let token = nester::ops::api_tokens::create(
        nester.db(),
        nester::db::audit::Actor::cli(),
        id,
        "ssh-test",
        Scope::ReadWrite,
        time::Duration::hours(1),
    )
    .await
    .unwrap();
    (format!("Bearer {token}"), secret)
}

/// The current code, at the nester's clock, `steps` of 30 s from now.
pub fn code(nester: &TestNester, secret: &[u8], steps: i64) -> String {
    let now = nester.clock().now().unix_timestamp() + 30 * steps;
    totp::code_at(secret, u64::try_from(now).unwrap())
}

pub async fn call(
    nester: &TestNester,
    auth: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Response {
    let mut headers = vec![("authorization", auth)];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    nester.anonymous(method, path, &headers, body).await
}

pub async fn ask(
    nester: &TestNester,
    auth: &str,
    public_key: &str,
    totp: &str,
    validity: Option<&str>,
) -> Response {
    let body = serde_json::json!({"public_key": public_key, "totp": totp, "validity": validity});
    call(
        nester,
        auth,
        Method::POST,
        "/api/v1/ssh/certificates",
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

pub async fn revoke(nester: &TestNester, auth: &str, serial: u64) -> Response {
    let path = format!("/api/v1/ssh/certificates/{serial}/revoke");
    call(nester, auth, Method::POST, &path, Vec::new()).await
}

/// A new Ed25519 key pair in `dir` named `name`; its public line.
pub fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// Runs `echo in` on the box as [`BOX_USER`] with key `name` and its certificate: whether
/// it got in, and ssh's error output. The box's host key is pinned.
pub fn login(sshd: &Sshd, dir: &Path, name: &str) -> (bool, String) {
    login_knowing(sshd, dir, name, &sshd.known_hosts_line())
}

/// [`login`] with `known_hosts` as the whole `known_hosts` file (`StrictHostKeyChecking=yes`).
pub fn login_knowing(sshd: &Sshd, dir: &Path, name: &str, known_hosts: &str) -> (bool, String) {
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("{known_hosts}\n")).unwrap();
    let output = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &sshd.port.to_string(), "-i"])
        .arg(dir.join(name))
        .arg("-o")
        .arg(format!(
            "CertificateFile={}",
            dir.join(format!("{name}-cert.pub")).display()
        ))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-o", "ConnectTimeout=10"])
        .arg(format!("{BOX_USER}@127.0.0.1"))
        .args(["echo", "in"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).to_string();
    (
        output.status.success() && out.trim() == "in",
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// `[ssh]` for a harvester on `sshd`'s box, with its host key certified when `host`.
pub fn box_config(sshd: &Sshd, host: bool) -> harvester::config::SshTrustConfig {
    harvester::config::SshTrustConfig {
        trusted_user_ca_keys: sshd.box_file("trusted_user_ca"),
        revoked_keys: sshd.box_file("revoked_keys"),
        host_key: host.then(|| sshd.box_file("host_ed25519.pub")),
        host_certificate: host.then(|| sshd.box_file("host_ed25519-cert.pub")),
        host_names: Vec::new(),
    }
}

/// Writes the certificate of an issuing response beside key `name` in `dir`; its serial.
pub fn save_certificate(dir: &Path, name: &str, issued: &Response) -> u64 {
    assert_eq!(issued.status, 201, "{}", issued.text());
    std::fs::write(
        dir.join(format!("{name}-cert.pub")),
        issued.json()["certificate"].as_str().unwrap(),
    )
    .unwrap();
    issued.json()["serial"].as_u64().unwrap()
}

/// A certificate for a new key `name` of the user behind `auth`, written beside the key.
pub async fn certificate_for(
    nester: &TestNester,
    auth: &str,
    secret: &[u8],
    dir: &Path,
    name: &str,
) -> u64 {
    let public = keygen(dir, name);
    let issued = ask(nester, auth, &public, &code(nester, secret, 0), None).await;
    save_certificate(dir, name, &issued)
}

/// A harvester box: an sshd that trusts no CA until its harvester installs the nester's,
/// whose `support` account takes the `support` principal, and the harvester of a new probe
/// keeping it (the host key certified when `host`), with its configuration.
pub async fn harvested_box(
    nester: &TestNester,
    host: bool,
) -> (
    Sshd,
    harvester::Agent,
    harvester::config::Config,
    crate::harness::Probe,
) {
    let sshd = Sshd::start_box("");
    std::fs::write(sshd.box_file("principals"), "support\n").unwrap();
    let probe = nester.probe().await;
    let mut config = nester.agent_config(&probe, "9");
    config.ssh = Some(box_config(&sshd, host));
    let agent = harvester::Agent::new(config.clone()).unwrap();
    (sshd, agent, config, probe)
}

/// Installs the KRL `/api/v1/ssh/krl` gives now on `sshd`'s box, as an operator without a
/// harvester would; its version.
pub async fn install_krl(nester: &TestNester, auth: &str, sshd: &Sshd) -> String {
    let krl = call(nester, auth, Method::GET, "/api/v1/ssh/krl", Vec::new()).await;
    assert_eq!(krl.status, 200);
    std::fs::write(sshd.box_file("revoked_keys"), &krl.body).unwrap();
    krl.header("x-krl-version").to_string()
}

/// What `ssh-keygen -Q` says of `file` (a key or a certificate) against the box's KRL:
/// whether it exited 0 (not revoked) and what it printed.
pub fn krl_says(sshd: &Sshd, file: &Path) -> (bool, String) {
    let out = Command::new("ssh-keygen")
        .arg("-Q")
        .arg("-f")
        .arg(sshd.box_file("revoked_keys"))
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// `[ssh] host_patterns` for boxes on this machine: sshd on a loopback port (the
/// `[host]:port` form is what ssh looks up for a port other than 22), names `box-*`.
pub const BOX_PATTERNS: [&str; 2] = ["[127.0.0.1]:*", "box-*"];

/// A nester whose host CA vouches for [`BOX_PATTERNS`].
pub async fn nester_for_boxes(adjust: impl FnOnce(&mut nester::config::Config)) -> TestNester {
    TestNester::start_with(|c| {
        c.ssh.host_patterns = BOX_PATTERNS.iter().map(|p| p.to_string()).collect();
        adjust(c);
    })
    .await
}
