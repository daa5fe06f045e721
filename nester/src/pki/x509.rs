//! The nester's own certificate authority.
//!
//! The CA and every certificate a browser may see are ECDSA P-256 (browsers refuse Ed25519
//! server certificates). Probe certificates carry Ed25519 keys, since probes sign reports with
//! them, and bind the probe id as a SAN URI (see [`shared::identity`]). Every certificate gets
//! a random serial and explicit validity dates.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_ED25519, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::datadir::{DataDir, write_new};

pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Browsers refuse server certificates valid for more than 398 days.
/// The listeners' certificates, by default (`[certificates] server_days`); renewed at 2/3.
pub const SERVER_VALIDITY: Duration = Duration::days(90);
/// The longest a listener's certificate may be issued for (the CA/Browser Forum's 2026 cap).
pub const SERVER_VALIDITY_MAX: Duration = Duration::days(200);
pub const PROBE_VALIDITY: Duration = Duration::days(30);
/// Tolerated clock skew between the nester and its peers.
const BACKDATE: Duration = Duration::minutes(5);

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A probe certificate signed from the probe's request.
pub struct ProbeCert {
    pub cert_pem: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    pub expires_at: OffsetDateTime,
    /// SHA-256 of the CA that signed it.
    pub issuer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("the certificate request is not a valid, self-signed PKCS#10 request")]
    Invalid,
    #[error("the certificate request must be for an Ed25519 key")]
    NotEd25519,
    #[error("cannot sign the certificate: {0}")]
    Sign(#[from] rcgen::Error),
}

/// The CA certificate, read once: PEM as served at `/ca.pem`, DER for rustls and report
/// verification.
#[derive(Clone)]
pub struct CaCert {
    pub pem: Arc<str>,
    pub der: CertificateDer<'static>,
}

impl CaCert {
    pub fn load(dir: &DataDir) -> anyhow::Result<Self> {
        Self::load_from(&dir.ca_cert())
    }

    pub fn load_from(path: &Path) -> anyhow::Result<Self> {
        Self::from_pem(read(path)?)
            .with_context(|| format!("{} holds no certificate", path.display()))
    }

    pub fn from_der(der: CertificateDer<'static>) -> Self {
        Self {
            pem: shared::trust::pem(&der).into(),
            der,
        }
    }

    pub fn from_pem(pem: String) -> anyhow::Result<Self> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .context("the CA certificate is not a PEM certificate")?
            .into_owned();
        Ok(Self {
            pem: pem.into(),
            der,
        })
    }

    /// SHA-256 of the certificate, as enrollment tokens pin it.
    pub fn fingerprint(&self) -> String {
        shared::identity::fingerprint(&self.der)
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (did you run `nester init`?)",
            path.display()
        )
    })
}

/// The CA, loaded from the data directory.
pub struct Ca {
    pub cert: CaCert,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// Creates a new CA and writes it into the data directory.
    pub fn create(dir: &DataDir, now: OffsetDateTime) -> anyhow::Result<Self> {
        Self::create_at(&dir.ca_cert(), &dir.ca_key(), now)
    }

    /// Creates a new CA, its key written to `key_path` (0600) and certificate to `cert_path`,
    /// neither of which may exist.
    pub fn create_at(
        cert_path: &Path,
        key_path: &Path,
        now: OffsetDateTime,
    ) -> anyhow::Result<Self> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let id = Uuid::new_v4().simple().to_string();
        let mut params = ca_params(&format!("Seahawks CA {}", &id[..8]))?;
        set_validity(&mut params, CA_VALIDITY, now)?;
        let cert_pem = params.self_signed(&key)?.pem();
        write_new(key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(cert_path, cert_pem.as_bytes(), 0o644)?;
        Ok(Self {
            cert: CaCert::from_pem(cert_pem)?,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn load(dir: &DataDir) -> anyhow::Result<Self> {
        Self::load_from(&dir.ca_cert(), &dir.ca_key())
    }

    pub fn load_from(cert_path: &Path, key_path: &Path) -> anyhow::Result<Self> {
        let cert = CaCert::load_from(cert_path)?;
        let key = KeyPair::from_pem(&read(key_path)?)
            .with_context(|| format!("{} is not a valid PEM key", key_path.display()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert.der)
            .map_err(|e| anyhow::anyhow!("{} cannot be read: {e}", cert_path.display()))?;
        anyhow::ensure!(
            parsed.public_key().subject_public_key.data.as_ref() == key.public_key_raw(),
            "{} is not the key of {} (a CA rotation half done? it is finished at the next start)",
            key_path.display(),
            cert_path.display()
        );
        let issuer =
            Issuer::from_ca_cert_pem(&cert.pem, key).context("the CA certificate is invalid")?;
        Ok(Self { cert, issuer })
    }

    /// Signs `message` with the CA key (ECDSA P-256 SHA-256, ASN.1): the trust bundle.
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        use rcgen::SigningKey;
        Ok(self.issuer.key().sign(message)?)
    }

    /// `newer`'s certificate signed by this CA, valid until `until`: during a rotation, what
    /// lets a peer that trusts only this CA verify a chain from `newer`.
    pub fn cross_sign(
        &self,
        newer: &Ca,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> anyhow::Result<String> {
        let (_, cert) = x509_parser::parse_x509_certificate(&newer.cert.der)
            .map_err(|e| anyhow::anyhow!("the new CA certificate cannot be read: {e}"))?;
        let name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .context("the new CA certificate has no common name")?;
        let mut params = ca_params(name)?;
        set_validity(&mut params, until - now, now)?;
        Ok(params.signed_by(newer.issuer.key(), &self.issuer)?.pem())
    }

    /// A TLS server certificate for `names` (DNS names or IP addresses), valid `validity`.
    pub fn issue_server(
        &self,
        names: &[String],
        validity: Duration,
        now: OffsetDateTime,
    ) -> anyhow::Result<Issued> {
        anyhow::ensure!(
            validity <= SERVER_VALIDITY_MAX,
            "a listener certificate may live {} days at most",
            SERVER_VALIDITY_MAX.whole_days()
        );
        let cn = names.first().map_or("seahawks nester", String::as_str);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = names
            .iter()
            .map(|n| san(n))
            .collect::<anyhow::Result<_>>()?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, validity, now)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A new certificate with the names of `current` (a server certificate of ours), with a
    /// new key: what renewal installs.
    pub fn renew_server(
        &self,
        current: &[u8],
        validity: Duration,
        now: OffsetDateTime,
    ) -> anyhow::Result<Issued> {
        use x509_parser::extensions::GeneralName;
        let (_, old) = x509_parser::parse_x509_certificate(current)
            .map_err(|e| anyhow::anyhow!("the certificate to renew cannot be read: {e}"))?;
        let names: Vec<String> = old
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(name) => Some((*name).to_string()),
                        GeneralName::IPAddress(bytes) => ip_of(bytes).map(|ip| ip.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        anyhow::ensure!(!names.is_empty(), "the certificate to renew names no host");
        self.issue_server(&names, validity, now)
    }

    /// Signs a probe's certificate request. Only the request's key is used: the names, usages
    /// and validity are ours. The key must be Ed25519, since the probe signs reports with it.
    pub fn sign_probe_csr(
        &self,
        csr_pem: &str,
        probe_id: Uuid,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<ProbeCert, CsrError> {
        let csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|_| CsrError::Invalid)?;
        if csr.public_key.algorithm() != &PKCS_ED25519 {
            return Err(CsrError::NotEd25519);
        }
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let uri = shared::identity::probe_uri(probe_id);
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params
            .distinguished_name
            .push(DnType::CommonName, probe_id.to_string());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let serial = set_validity(&mut params, validity, now)?;
        let expires_at = params.not_after;
        let cert = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        }
        .signed_by(&self.issuer)?;
        Ok(ProbeCert {
            cert_pem: cert.pem(),
            serial,
            expires_at,
            issuer: self.cert.fingerprint(),
        })
    }
}

/// A CA certificate's parameters: O=Seahawks, CN=`name`, signing certificates only.
fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Seahawks");
    params.distinguished_name.push(DnType::CommonName, name);
    Ok(params)
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

/// An IP address SAN's bytes as an address.
fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Sets the validity window and a random serial, which it returns in hex.
fn set_validity(
    params: &mut CertificateParams,
    validity: Duration,
    now: OffsetDateTime,
) -> Result<String, rcgen::Error> {
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| rcgen::Error::RingUnspecified)?;
    serial[0] &= 0x7f; // positive, as RFC 5280 requires
    params.serial_number = Some(SerialNumber::from(serial.to_vec()));
    Ok(serial.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::UnixTime;

    fn ca() -> (tempfile::TempDir, Ca) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("data"));
        data.create().unwrap();
        Ca::create(&data, OffsetDateTime::now_utc()).unwrap();
        let ca = Ca::load(&data).unwrap();
        let mode = std::fs::metadata(data.ca_key()).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert!(
            Ca::create(&data, OffsetDateTime::now_utc()).is_err(),
            "a second CA must never overwrite the first"
        );
        (dir, ca)
    }

    fn csr(key: &KeyPair) -> String {
        let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained); // asked for, never granted
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_probe_request_gets_our_names_not_its_own() {
        let (_dir, ca) = ca();
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let id = Uuid::new_v4();
        let issued = ca
            .sign_probe_csr(&csr(&key), id, PROBE_VALIDITY, OffsetDateTime::now_utc())
            .unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(shared::identity::probe_id_from_cert(&der).unwrap(), id);
        assert_eq!(issued.serial.len(), 32);

        // The probe's key signs reports that verify against the CA as a client-auth leaf
        // (an `invalid_report` error means chain and signature held).
        let ca_der = ca.cert.der.clone();
        let signer = shared::Signer::new(&key.serialize_der(), &[der, ca_der.clone()]).unwrap();
        let err = shared::Verifier::new(ca_der)
            .unwrap()
            .verify(signer.sign(b"{}").as_bytes(), UnixTime::now())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_report", "{err}");
    }

    #[test]
    fn a_ca_key_that_is_not_the_certificates_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let data = DataDir::new(temp.path().join("data"));
        data.create().unwrap();
        Ca::create(&data, OffsetDateTime::now_utc()).unwrap();
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(data.ca_key(), other.serialize_pem()).unwrap();
        let err = Ca::load(&data).err().unwrap().to_string();
        assert!(err.contains("is not the key of"), "{err}");
    }

    #[test]
    fn requests_that_are_not_ed25519_or_not_signed_are_refused() {
        let (_dir, ca) = ca();
        let p256 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(matches!(
            ca.sign_probe_csr(
                &csr(&p256),
                Uuid::new_v4(),
                PROBE_VALIDITY,
                OffsetDateTime::now_utc()
            ),
            Err(CsrError::NotEd25519)
        ));
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let tampered = csr(&key).replace("MI", "MJ");
        assert!(matches!(
            ca.sign_probe_csr(
                &tampered,
                Uuid::new_v4(),
                PROBE_VALIDITY,
                OffsetDateTime::now_utc()
            ),
            Err(CsrError::Invalid)
        ));
        assert!(matches!(
            ca.sign_probe_csr(
                "garbage",
                Uuid::new_v4(),
                PROBE_VALIDITY,
                OffsetDateTime::now_utc()
            ),
            Err(CsrError::Invalid)
        ));
    }
}
