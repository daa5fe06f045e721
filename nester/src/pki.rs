//! The nester's own certificate authority.
//!
//! The CA and every certificate a browser may see are ECDSA P-256 (browsers refuse Ed25519
//! server certificates). Probe certificates carry Ed25519 keys, since probes sign reports with
//! them, and bind the probe id as a SAN URI (see [`shared::identity`]). Every certificate gets
//! a random serial and explicit validity dates.

use std::net::IpAddr;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::datadir::{DataDir, write_new};

pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Browsers refuse server certificates valid for more than 398 days.
pub const SERVER_VALIDITY: Duration = Duration::days(397);
pub const PROBE_VALIDITY: Duration = Duration::days(30);
/// Tolerated clock skew between the nester and its peers.
const BACKDATE: Duration = Duration::minutes(5);

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA, loaded from the data directory.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Creates a new CA and writes it into the data directory.
    pub fn create(dir: &DataDir) -> anyhow::Result<Self> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let id = Uuid::new_v4().simple().to_string();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Seahawks");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Seahawks CA {}", &id[..8]));
        set_validity(&mut params, CA_VALIDITY)?;
        let cert_pem = params.self_signed(&key)?.pem();
        write_new(&dir.pki("ca.key"), key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&dir.pki("ca.pem"), cert_pem.as_bytes(), 0o644)?;
        Ok(Self {
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn load(dir: &DataDir) -> anyhow::Result<Self> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.pki(f)).with_context(|| {
                format!(
                    "cannot read {} (did you run `nester init`?)",
                    dir.pki(f).display()
                )
            })
        };
        let cert_pem = read("ca.pem")?;
        let key =
            KeyPair::from_pem(&read("ca.key")?).context("the CA key is not a valid PEM key")?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).context("the CA certificate is invalid")?;
        Ok(Self { cert_pem, issuer })
    }

    /// A TLS server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[String]) -> anyhow::Result<Issued> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = names
            .iter()
            .map(|n| san(n))
            .collect::<anyhow::Result<_>>()?;
        let cn = names.first().map_or("seahawks nester", String::as_str);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, SERVER_VALIDITY)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A probe's client certificate, with a fresh Ed25519 key. Stopgap until enrollment
    /// (CSR-based, so the key never leaves the probe) replaces it.
    pub fn issue_probe(&self, probe_id: Uuid, validity: Duration) -> anyhow::Result<Issued> {
        let key = KeyPair::generate_for(&PKCS_ED25519)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let uri = shared::identity::probe_uri(probe_id);
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params
            .distinguished_name
            .push(DnType::CommonName, probe_id.to_string());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        set_validity(&mut params, validity)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn san(name: &str) -> anyhow::Result<SanType> {
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            name.try_into()
                .with_context(|| format!("`{name}` is not a valid DNS name"))?,
        ),
    })
}

fn set_validity(params: &mut CertificateParams, validity: Duration) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| anyhow::anyhow!("no randomness available"))?;
    serial[0] &= 0x7f; // positive, as RFC 5280 requires
    params.serial_number = Some(SerialNumber::from(serial.to_vec()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn probe_certificates_name_their_probe_and_chain_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create().unwrap();
        let ca = Ca::create(&data).unwrap();
        let id = Uuid::new_v4();
        let issued = Ca::load(&data)
            .unwrap()
            .issue_probe(id, PROBE_VALIDITY)
            .unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(shared::identity::probe_id_from_cert(&der).unwrap(), id);

        // The issued key signs reports that verify against the CA, as a client-auth leaf.
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes())
            .unwrap()
            .into_owned();
        let key = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(issued.key_pem.as_bytes())
            .unwrap();
        let signer = shared::Signer::new(key.secret_pkcs8_der(), &[der, ca_der.clone()]).unwrap();
        let jws = signer.sign(b"{}");
        let err = shared::Verifier::new(ca_der)
            .unwrap()
            .verify(jws.as_bytes(), rustls_pki_types::UnixTime::now())
            .unwrap_err();
        assert_eq!(
            err.code(),
            "invalid_report",
            "chain and signature must hold: {err}"
        );

        let mode = std::fs::metadata(data.pki("ca.key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        // A second CA never overwrites the first.
        assert!(Ca::create(&data).is_err());
    }
}
