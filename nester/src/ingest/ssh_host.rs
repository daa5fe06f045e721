//! `POST /v1/ssh/host-certificate` (mTLS): a harvester sends its box's SSH host key, names
//! and addresses; the nester answers with a host certificate from the host CA for them and
//! for the address it sees the harvester come from, so that `ssh` trusts the box through
//! one `@cert-authority` line. Only names and addresses matching `[ssh] host_patterns` are
//! certified (none configured: no host certificates), and one another box's valid
//! certificate holds is left out (logged): an enrolled harvester cannot get itself
//! certified as another box, nor as any host outside the operator's patterns.
//! The probe's newest certificate is handed back while it still fits (same key, names and
//! signing CA, under two thirds through its life), so asking each cycle costs nothing. The
//! host key of a revoked probe is refused: clients list it as `@revoked`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use russh::keys::HashAlg;
use shared::protocol::{HostCertificateRequest, HostCertificateResponse};

use super::{IngestState, ProbeIdentity};
use crate::db::audit::Actor;
use crate::db::ssh_hosts::HostCertificate;
use crate::error::{ApiError, ApiJson};
use crate::ssh_ca::ca::Request;
use crate::ssh_ca::keys;

/// More names and addresses than a box has.
const MAX_PRINCIPALS: usize = 32;
/// Valid from a little before now, for clocks a little behind.
const BACKDATE_MS: i64 = 5 * 60 * 1000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_host_key_request", message)
}

/// A DNS name in lower case, or why not. `localhost` is every box's, so no box's.
fn name(text: &str) -> Result<String, String> {
    let name = text.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{text:?} is not a host name"));
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Err("localhost names every box".into());
    }
    Ok(name)
}

/// Whether `address` can tell one box from another (not loopback, link-local, multicast).
fn distinct(address: IpAddr) -> bool {
    let address = address.to_canonical();
    match address {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_unspecified() || v4.is_link_local() || v4.is_multicast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// The names and addresses the box asked for that are its to have, and the address the
/// harvester came from (whatever it is: a loopback peer is a box on the nester's machine).
fn principals(
    request: &HostCertificateRequest,
    peer: IpAddr,
) -> Result<BTreeSet<String>, ApiError> {
    if request.names.len() + request.addresses.len() > MAX_PRINCIPALS {
        return Err(bad(format!("at most {MAX_PRINCIPALS} names and addresses")));
    }
    let mut all = BTreeSet::from([peer.to_canonical().to_string()]);
    for text in &request.names {
        all.insert(name(text).map_err(bad)?);
    }
    all.extend(
        request
            .addresses
            .iter()
            .filter(|a| distinct(**a))
            .map(|a| a.to_canonical().to_string()),
    );
    Ok(all)
}

pub(super) async fn host_certificate(
    probe: ProbeIdentity,
    State(state): State<IngestState>,
    ApiJson(request): ApiJson<HostCertificateRequest>,
) -> Result<Json<HostCertificateResponse>, ApiError> {
    let app = &state.app;
    if app.ssh.config.host_patterns.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_certificates_off",
            "this nester signs no host certificates: its operator sets the boxes' names in \
             `[ssh] host_patterns` (nester.toml) first",
        ));
    }
    let host_key = keys::accepted(&request.host_key).map_err(bad)?;
    let mut wanted = principals(&request, probe.peer.addr.ip())?;
    let probe_id = probe.probe_id.to_string();
    let now = app.clock.now_ms();
    app.db
        .record_ssh_trust_holder(
            probe_id.clone(),
            probe.site.clone(),
            None,
            request.trust_version,
        )
        .await?;
    let fingerprint = host_key.fingerprint(HashAlg::Sha256).to_string();
    if app
        .db
        .revoked_host_keys(now)
        .await?
        .iter()
        .any(|(f, _)| *f == fingerprint)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_key_revoked",
            "this host key was a revoked probe's: make new host keys on the box (remove \
             /etc/ssh/ssh_host_* and run ssh-keygen -A), then restart sshd",
        ));
    }
    let taken = app
        .db
        .host_principals_of_others(probe_id.clone(), now)
        .await?;
    let config = &app.ssh.config;
    for name in wanted.iter().filter(|n| !config.vouches_for(n)) {
        tracing::info!(probe = %probe_id, principal = %name, "a name or address outside [ssh] host_patterns is left out");
    }
    wanted.retain(|n| config.vouches_for(n));
    if wanted.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_principals",
            "none of this box's names and addresses matches `[ssh] host_patterns`",
        ));
    }
    for name in wanted.iter().filter(|n| taken.contains(*n)) {
        tracing::warn!(probe = %probe_id, principal = %name, "a name or address another box's host certificate holds is left out");
    }
    wanted.retain(|n| !taken.contains(n));
    if wanted.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "principals_taken",
            "every name and address of this box is in another box's host certificate",
        ));
    }
    let principals: Vec<String> = wanted.into_iter().collect();
    let cas = app.ssh.cas();
    let ca = cas.host.signing(now);

    if let Some(latest) = app.db.latest_host_certificate(probe_id.clone()).await?
        && latest.fingerprint == fingerprint
        && latest.principals == principals
        && latest.ca == ca.fingerprint()
        && now < latest.valid_after_ms + (latest.valid_before_ms - latest.valid_after_ms) * 2 / 3
    {
        return Ok(Json(HostCertificateResponse {
            certificate: latest.certificate,
            principals: latest.principals,
            valid_before: keys::unix_secs(latest.valid_before_ms),
        }));
    }

    let validity = i64::try_from(app.ssh.config.host_validity.as_millis()).unwrap_or(i64::MAX);
    let (after, before) = (now - BACKDATE_MS, now.saturating_add(validity));
    let serial = keys::serial().map_err(ApiError::internal)?;
    let certificate = ca
        .sign(
            &host_key,
            &Request {
                serial,
                key_id: format!("{} probe {probe_id} serial {serial}", probe.site),
                principals: principals.clone(),
                valid_after: keys::unix_secs(after),
                valid_before: keys::unix_secs(before),
                forwarding: false,
            },
        )
        .and_then(|c| Ok(c.to_openssh()?))
        .map_err(ApiError::internal)?;
    app.db
        .record_host_certificate(
            Actor::probe(probe.probe_id, probe.peer.addr.ip()),
            HostCertificate {
                serial,
                probe_id: probe_id.clone(),
                site: probe.site,
                public_key: host_key.to_openssh().map_err(ApiError::internal)?,
                fingerprint,
                principals: principals.clone(),
                valid_after_ms: after,
                valid_before_ms: before,
                ca: ca.fingerprint(),
                certificate: certificate.clone(),
            },
        )
        .await?;
    tracing::info!(probe = %probe_id, serial, principals = ?principals, "SSH host certificate issued");
    crate::metrics::ssh_certificate_issued("host");
    Ok(Json(HostCertificateResponse {
        certificate,
        principals,
        valid_before: keys::unix_secs(before),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(names: &[&str], addresses: &[&str]) -> HostCertificateRequest {
        HostCertificateRequest {
            host_key: String::new(),
            names: names.iter().map(|n| n.to_string()).collect(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            trust_version: None,
        }
    }

    #[test]
    fn names_are_checked_and_addresses_that_name_no_box_left_out() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let got = principals(
            &request(
                &["Box-1.Shop.example.", "box-1"],
                &[
                    "10.1.2.3",
                    "127.0.0.1",
                    "fe80::1",
                    "::",
                    "224.0.0.1",
                    "::ffff:10.1.2.4",
                ],
            ),
            peer,
        )
        .unwrap();
        let want = [
            "10.1.2.3",
            "10.1.2.4",
            "203.0.113.9",
            "box-1",
            "box-1.shop.example",
        ];
        assert_eq!(got.into_iter().collect::<Vec<_>>(), want);
        for hostile in [
            "localhost",
            "a..b",
            "-a",
            "a b",
            "*.example",
            "x\n",
            &"a".repeat(64),
        ] {
            assert!(
                principals(&request(&[hostile], &[]), peer).is_err(),
                "{hostile:?}"
            );
        }
        let many: Vec<String> = (0..33).map(|i| format!("h{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(principals(&request(&many, &[]), peer).is_err());
        // A loopback peer (a box on the nester's machine) is still named.
        let local = principals(&request(&[], &[]), "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(local.into_iter().collect::<Vec<_>>(), ["127.0.0.1"]);
    }
}
