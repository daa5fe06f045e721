//! Round trip and tampering. Each attack must fail with its own specific error.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType,
};

use super::*;
use crate::identity::probe_uri;
use crate::report::tests::sample;

struct Ca {
    cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap().der().clone();
    Ca {
        cert,
        issuer: Issuer::new(params, key),
    }
}

struct Probe {
    id: Uuid,
    key: KeyPair,
    chain: Vec<CertificateDer<'static>>,
}

fn probe(ca: &Ca) -> Probe {
    let id = Uuid::now_v7();
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::URI(probe_uri(id).try_into().unwrap())];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = params.signed_by(&key, &ca.issuer).unwrap().der().clone();
    Probe {
        id,
        key,
        chain: vec![leaf, ca.cert.clone()],
    }
}

impl Probe {
    fn signer(&self) -> Signer {
        Signer::new(&self.key.serialize_der(), &self.chain).unwrap()
    }
    fn signed(&self) -> String {
        self.signer().sign_report(&sample(self.id)).unwrap()
    }
}

fn now() -> UnixTime {
    UnixTime::now()
}

fn parts(jws: &str) -> Vec<String> {
    jws.split('.').map(str::to_string).collect()
}

#[test]
fn round_trip() {
    let ca = ca("Seahawks test CA");
    let probe = probe(&ca);
    let report = sample(probe.id);
    let jws = probe.signer().sign_report(&report).unwrap();
    let verified = Verifier::new(ca.cert.clone())
        .unwrap()
        .verify(jws.as_bytes(), now())
        .unwrap();
    assert_eq!(verified.report, report);
    assert_eq!(verified.probe_id, probe.id);
    assert_eq!(verified.kid, identity::fingerprint(&probe.chain[0]));
}

#[test]
fn header_is_standard_jose() {
    let ca = ca("Seahawks test CA");
    let jws = probe(&ca).signed();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts(&jws)[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 2);
    assert!(header["kid"].as_str().unwrap().len() == 64);
}

#[test]
fn rfc9864_algorithm_name_is_accepted() {
    let ca = ca("Seahawks test CA");
    let probe = probe(&ca);
    let signer = probe.signer();
    let mut header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&signer.header_b64).unwrap()).unwrap();
    header["alg"] = "Ed25519".into();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&sample(probe.id)).unwrap())
    );
    let jws = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.key.sign(input.as_bytes()))
    );
    Verifier::new(ca.cert)
        .unwrap()
        .verify(jws.as_bytes(), now())
        .unwrap();
}

#[test]
fn flipped_payload_byte_is_a_bad_signature() {
    let ca = ca("Seahawks test CA");
    let mut p = parts(&probe(&ca).signed());
    let mut payload = URL_SAFE_NO_PAD.decode(&p[1]).unwrap();
    let i = payload.iter().position(|&b| b == b'7').unwrap(); // the sequence number
    payload[i] = b'8';
    p[1] = URL_SAFE_NO_PAD.encode(payload);
    let err = Verifier::new(ca.cert)
        .unwrap()
        .verify(p.join(".").as_bytes(), now())
        .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err}");
}

#[test]
fn swapped_header_is_a_bad_signature() {
    let ca = ca("Seahawks test CA");
    let mut victim = parts(&probe(&ca).signed());
    let other = parts(&probe(&ca).signed());
    victim[0] = other[0].clone();
    let err = Verifier::new(ca.cert)
        .unwrap()
        .verify(victim.join(".").as_bytes(), now())
        .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err}");
}

#[test]
fn another_key_is_a_bad_signature() {
    let ca = ca("Seahawks test CA");
    let honest = probe(&ca);
    let thief = probe(&ca);
    // The thief keeps the honest probe's header (its certificate) but signs with its own key.
    let header_b64 = honest.signer().header_b64;
    let input = format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(b"{}"));
    let signature = thief.signer().key.sign(input.as_bytes());
    let jws = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let err = Verifier::new(ca.cert)
        .unwrap()
        .verify(jws.as_bytes(), now())
        .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err}");
}

#[test]
fn signer_refuses_a_key_that_is_not_the_certificates() {
    let ca = ca("Seahawks test CA");
    let honest = probe(&ca);
    let thief = probe(&ca);
    let err = Signer::new(&thief.key.serialize_der(), &honest.chain)
        .err()
        .unwrap();
    assert!(matches!(err, SignerError::KeyMismatch), "{err}");
}

#[test]
fn chain_from_another_ca_is_untrusted() {
    let ours = ca("Seahawks test CA");
    let verifier = Verifier::new(ours.cert).unwrap();
    // An impostor CA with the same name: the issuer is found, its signature is not ours.
    let jws = probe(&ca("Seahawks test CA")).signed();
    let err = verifier.verify(jws.as_bytes(), now()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::UntrustedCertificate(webpki::Error::InvalidSignatureForPublicKey)
        ),
        "{err}"
    );
    assert_eq!(err.code(), "untrusted_certificate");
    // Any other CA: no issuer at all.
    let jws = probe(&ca("Elsewhere CA")).signed();
    let err = verifier.verify(jws.as_bytes(), now()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::UntrustedCertificate(webpki::Error::UnknownIssuer)
        ),
        "{err}"
    );
}

#[test]
fn expired_certificate_is_untrusted() {
    let ca = ca("Seahawks test CA");
    let jws = probe(&ca).signed();
    let later = UnixTime::since_unix_epoch(Duration::from_secs(i64::MAX as u64 / 2));
    let err = Verifier::new(ca.cert)
        .unwrap()
        .verify(jws.as_bytes(), later)
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::UntrustedCertificate(webpki::Error::CertExpired { .. })
        ),
        "{err}"
    );
}

#[test]
fn report_for_another_probe_is_a_mismatch() {
    let ca = ca("Seahawks test CA");
    let probe = probe(&ca);
    let jws = probe.signer().sign_report(&sample(Uuid::now_v7())).unwrap();
    let err = Verifier::new(ca.cert)
        .unwrap()
        .verify(jws.as_bytes(), now())
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::ProbeMismatch { certificate, .. } if certificate == probe.id),
        "{err}"
    );
}

#[test]
fn kid_must_name_the_leaf() {
    let ca = ca("Seahawks test CA");
    let probe = probe(&ca);
    let signer = probe.signer();
    let mut header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&signer.header_b64).unwrap()).unwrap();
    header["kid"] = "00".repeat(32).into();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(b"{}")
    );
    let jws = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.key.sign(input.as_bytes()))
    );
    let err = Verifier::new(ca.cert)
        .unwrap()
        .verify(jws.as_bytes(), now())
        .unwrap_err();
    assert!(matches!(err, VerifyError::KeyIdMismatch), "{err}");
}

#[test]
fn hostile_headers_get_specific_errors() {
    let ca = ca("Seahawks test CA");
    let verifier = Verifier::new(ca.cert.clone()).unwrap();
    let leaf = STANDARD.encode(&probe(&ca).chain[0]);
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            serde_json::json!({"alg":"none","x5c":[leaf]}),
            "unsupported_algorithm",
        ),
        (
            serde_json::json!({"alg":"HS256","x5c":[leaf]}),
            "unsupported_algorithm",
        ),
        (serde_json::json!({"alg":"EdDSA"}), "missing_certificate"),
        (
            serde_json::json!({"alg":"EdDSA","x5c":[leaf],"crit":["exp"]}),
            "unsupported_header",
        ),
        (
            serde_json::json!({"alg":"EdDSA","x5c":[leaf],"b64":false}),
            "unsupported_header",
        ),
        (
            serde_json::json!({"alg":"EdDSA","x5c":[leaf],"cty":"text/plain"}),
            "unsupported_header",
        ),
        (
            serde_json::json!({"alg":"EdDSA","x5c":["!!"]}),
            "malformed_jws",
        ),
        (
            serde_json::json!({"alg":"EdDSA","x5c":[STANDARD.encode(b"not a cert")]}),
            "untrusted_certificate",
        ),
        (
            serde_json::json!({"alg":"EdDSA","x5c":[STANDARD.encode(&ca.cert)]}),
            "untrusted_certificate",
        ),
    ];
    for (header, code) in cases {
        let jws = format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode(header.to_string()));
        let err = verifier.verify(jws.as_bytes(), now()).unwrap_err();
        assert_eq!(err.code(), code, "{header}: {err}");
    }
    let duplicate = r#"{"alg":"EdDSA","alg":"none"}"#;
    let jws = format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode(duplicate));
    assert_eq!(
        verifier.verify(jws.as_bytes(), now()).unwrap_err().code(),
        "malformed_jws"
    );
}

#[test]
fn malformed_compact_forms() {
    let ca = ca("Seahawks test CA");
    let verifier = Verifier::new(ca.cert.clone()).unwrap();
    let good = probe(&ca).signed();
    let p = parts(&good);
    let padded = format!("{}=.{}.{}", p[0], p[1], p[2]);
    let too_big = format!("{}.{}.{}", "A".repeat(MAX_HEADER_BYTES + 4), p[1], p[2]);
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.e30.AAAA",
        "e30.e30.AAAA",
        good.as_str().split_at(10).0,
        &padded,
        &too_big,
        &good.replace('.', ".."),
    ] {
        let err = verifier.verify(bad.as_bytes(), now()).unwrap_err();
        assert_eq!(err.code(), "malformed_jws", "{bad:.40}: {err}");
    }
    // A trailing newline (from `curl -d @file`) is not an attack.
    verifier
        .verify(format!("{good}\n").as_bytes(), now())
        .unwrap();
}

#[test]
fn a_remembered_certificate_still_expires() {
    let ca = ca("Seahawks test CA");
    let jws = probe(&ca).signed();
    let verifier = Verifier::new(ca.cert).unwrap();
    verifier.verify(jws.as_bytes(), now()).unwrap();
    verifier.verify(jws.as_bytes(), now()).unwrap(); // from the cache
    let later = UnixTime::since_unix_epoch(Duration::from_secs(i64::MAX as u64 / 2));
    let err = verifier.verify(jws.as_bytes(), later).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::UntrustedCertificate(webpki::Error::CertExpired { .. })
        ),
        "{err}"
    );
    // And a tampered report from a remembered signer is still caught.
    let mut p = parts(&jws);
    p[2] = URL_SAFE_NO_PAD.encode([1u8; 64]);
    let err = verifier.verify(p.join(".").as_bytes(), now()).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err}");
}
