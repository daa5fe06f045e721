//! Joining a nester (`harvester enroll`) and renewing the certificate afterwards.
//!
//! The key pair is made here and never leaves the machine: the nester only sees a CSR. The
//! first contact trusts the server only if it presents the CA pinned in the token.

use std::path::Path;

use anyhow::{Context, bail};
use rcgen::{CertificateParams, KeyPair, PKCS_ED25519};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use shared::enroll::{CertificateResponse, EnrollRequest, EnrollmentToken, RenewRequest};
use shared::protocol::{ENROLL_PATH, RENEW_PATH, code};
use uuid::Uuid;

use crate::state::{self, IDENTITY_FILE, Identity};
use crate::uplink::{Uplink, UplinkError};

/// A fresh Ed25519 key and a CSR for it.
fn key_and_csr() -> anyhow::Result<(KeyPair, String)> {
    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let csr = CertificateParams::new(Vec::<String>::new())?
        .serialize_request(&key)?
        .pem()?;
    Ok((key, csr))
}

/// Checks what the nester sent (our key, a CA we trust that issued the certificate, a probe id
/// that matches), then stores the new identity.
fn store(
    state_dir: &Path,
    key: &KeyPair,
    response: &CertificateResponse,
    trusted: &[String],
) -> anyhow::Result<()> {
    let cert = CertificateDer::from_pem_slice(response.certificate.as_bytes())
        .context("the nester sent no certificate")?;
    let ca = CertificateDer::from_pem_slice(response.ca.as_bytes())
        .context("the nester sent no CA certificate")?;
    if !trusted.contains(&shared::identity::fingerprint(&ca)) {
        bail!("the nester sent a CA certificate this harvester does not trust");
    }
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    if !shared::identity::issued_by(&cert, &ca, now) {
        bail!("the nester sent a certificate its CA did not issue");
    }
    if shared::identity::probe_id_from_cert(&cert)? != response.probe_id {
        bail!("the nester sent a certificate for another probe");
    }
    let signer = shared::Signer::new(&key.serialize_der(), &[cert, ca]);
    signer.context("the nester sent a certificate for another key")?;
    state::save_identity(
        state_dir,
        &key.serialize_pem(),
        &response.certificate,
        &response.ca,
        &response.site,
    )
}

/// What to tell a person when the nester refused the token.
fn explain(e: UplinkError) -> anyhow::Error {
    let advice = match e.code() {
        Some(
            code::TOKEN_EXPIRED | code::TOKEN_USED_UP | code::TOKEN_REVOKED | code::TOKEN_INVALID,
        ) => {
            "ask an administrator for a new token (`nester token create --site SITE`) and run `harvester enroll` again"
        }
        Some(code::RATE_LIMITED) => "wait a minute and try again",
        _ => "check the nester address in the token and that the nester is running",
    };
    anyhow::anyhow!("enrollment failed: {e}\n{advice}")
}

/// Enrolls with `token` and stores the identity in `state_dir`; returns the probe id and site.
///
/// The certificate may come from another CA than the pinned one when the nester's CA is being
/// rotated: the connection was authenticated through the pinned CA (which vouches for the new
/// one with a cross-certificate), so the CA it names is trusted.
pub async fn enroll(token: &str, state_dir: &Path) -> anyhow::Result<(Uuid, String)> {
    let token = EnrollmentToken::parse(token)?;
    if state_dir.join(IDENTITY_FILE).exists() {
        let current = Identity::load(state_dir)
            .map(|i| i.probe_id.to_string())
            .unwrap_or_default();
        bail!(
            "{} already holds an identity (probe {current}); remove {IDENTITY_FILE} to enroll again",
            state_dir.display()
        );
    }
    let (key, csr) = key_and_csr()?;
    let mut uplink = Uplink::new(&token.ingest, None, crate::tls::pinned(&token.ca_sha256)?)?;
    let request = EnrollRequest {
        token_id: token.id.clone(),
        secret: token.secret.clone(),
        csr,
    };
    let response: CertificateResponse = uplink
        .post_json(ENROLL_PATH, &request)
        .await
        .map_err(explain)?;
    let issuer = CertificateDer::from_pem_slice(response.ca.as_bytes())
        .map(|ca| shared::identity::fingerprint(&ca))
        .context("the nester sent no CA certificate")?;
    store(state_dir, &key, &response, &[issuer])?;
    state::save_ingest_address(state_dir, &token.ingest)?;
    Ok((response.probe_id, response.site))
}

/// Renews the certificate over mTLS with a new key; the identity file is replaced atomically.
pub async fn renew(state_dir: &Path, uplink: &mut Uplink) -> anyhow::Result<Identity> {
    let current = Identity::load(state_dir)?;
    let (key, csr) = key_and_csr()?;
    let response: CertificateResponse = uplink
        .post_json(RENEW_PATH, &RenewRequest { csr })
        .await
        .context("certificate renewal failed")?;
    if response.probe_id != current.probe_id {
        bail!("the nester renewed the certificate for another probe");
    }
    let trusted: Vec<String> = current
        .trust
        .iter()
        .map(|ca| shared::identity::fingerprint(ca))
        .collect();
    store(state_dir, &key, &response, &trusted)?;
    Identity::load(state_dir)
}
