//! The backup server's host key, pinned in `[backup] host_key`: the key itself (a public key
//! or a `known_hosts` line), its SHA-256 fingerprint, or the CA that signs the server's host
//! certificate (an `@cert-authority` line). Anything else the server presents is refused with
//! what was presented and what was expected; there is no way to skip the check.

use std::str::FromStr;

use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};

#[derive(Debug, Clone)]
pub enum HostKeyPin {
    Key(PublicKey),
    /// `SHA256:` and the unpadded base64 of the digest, as `ssh-keygen -lf` prints it.
    Fingerprint(String),
    /// Host certificates signed by this CA, naming the host.
    CertAuthority(PublicKey),
}

impl FromStr for HostKeyPin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(digest) = text.strip_prefix("SHA256:") {
            let ok = digest.len() == 43
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
            return if ok {
                Ok(Self::Fingerprint(text.to_string()))
            } else {
                Err(format!(
                    "`{text}` is not a SHA256 fingerprint as `ssh-keygen -lf` prints it"
                ))
            };
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let key_at = |i: usize| -> Result<PublicKey, String> {
            let (Some(alg), Some(data)) = (fields.get(i), fields.get(i + 1)) else {
                return Err(format!("`{text}` holds no public key"));
            };
            PublicKey::from_openssh(&format!("{alg} {data}"))
                .map_err(|e| format!("`{alg} {data}` is not an OpenSSH public key: {e}"))
        };
        match fields.first().copied() {
            Some("@cert-authority") => Ok(Self::CertAuthority(key_at(2)?)),
            Some(marker) if marker.starts_with('@') => Err(format!(
                "`{marker}` lines cannot pin a host key; use the key, its fingerprint or @cert-authority"
            )),
            // A bare key, or a known_hosts line (hosts first).
            Some(first) if Algorithm::from_str(first).is_ok() => Ok(Self::Key(key_at(0)?)),
            Some(_) => Ok(Self::Key(key_at(1)?)),
            None => Err("`host_key` is empty: pin the backup server's host key".into()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for HostKeyPin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl HostKeyPin {
    /// The host key algorithms to ask the server for: the pinned key's own, so a server with
    /// several keys presents that one; certificates when a CA is pinned.
    pub fn preferred(&self) -> (Vec<Algorithm>, Vec<Algorithm>) {
        let all = russh::Preferred::DEFAULT.key.to_vec();
        match self {
            Self::Key(key) => (vec![key.algorithm()], Vec::new()),
            Self::Fingerprint(_) => (all, Vec::new()),
            Self::CertAuthority(_) => (all.clone(), all),
        }
    }

    /// Whether `presented` by `host` at `now` (Unix seconds) is what the pin allows; the
    /// reason when not.
    pub fn check(
        &self,
        presented: &PublicKeyOrCertificate,
        host: &str,
        now: u64,
    ) -> Result<(), String> {
        let advice = "if the server was reinstalled or its key replaced, check the new key out of \
                      band and update `[backup] host_key`; otherwise someone may be intercepting \
                      the connection";
        match (self, presented) {
            (Self::Key(pinned), PublicKeyOrCertificate::PublicKey { key, .. }) => {
                if key.key_data() == pinned.key_data() {
                    Ok(())
                } else {
                    Err(format!(
                        "the backup server presented host key {} ({}), not the pinned {}: {advice}",
                        fingerprint(key),
                        key.algorithm(),
                        fingerprint(pinned)
                    ))
                }
            }
            (Self::Fingerprint(pinned), PublicKeyOrCertificate::PublicKey { key, .. }) => {
                if &fingerprint(key) == pinned {
                    Ok(())
                } else {
                    Err(format!(
                        "the backup server presented host key {} ({}), not the pinned {pinned}: {advice}",
                        fingerprint(key),
                        key.algorithm()
                    ))
                }
            }
            (Self::CertAuthority(ca), PublicKeyOrCertificate::Certificate(cert)) => {
                let ca_print = ca.fingerprint(HashAlg::Sha256);
                cert.validate_at(now, [&ca_print]).map_err(|e| {
                    format!("the backup server's host certificate does not hold against the pinned CA {ca_print}: {e}")
                })?;
                if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::Host {
                    return Err("the backup server presented a user certificate as its host certificate".into());
                }
                let principals = cert.valid_principals();
                if !principals.is_empty() && !principals.iter().any(|p| p == host) {
                    return Err(format!(
                        "the backup server's host certificate names {principals:?}, not {host}"
                    ));
                }
                Ok(())
            }
            (Self::CertAuthority(_), PublicKeyOrCertificate::PublicKey { key, .. }) => Err(format!(
                "the backup server presented a bare host key {} where a host certificate from the pinned CA is required",
                fingerprint(key)
            )),
            (_, PublicKeyOrCertificate::Certificate(_)) => Err(
                "the backup server presented a host certificate; pin its CA with an @cert-authority line".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use russh::keys::ssh_key::private::{Ed25519Keypair, PrivateKey};

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    fn presented(text: &str) -> PublicKeyOrCertificate {
        PublicKey::from_openssh(text).unwrap().into()
    }

    #[test]
    fn every_pin_form_parses_and_nonsense_is_named() {
        let key = key(1);
        let text = key.to_openssh().unwrap();
        let key_text = text
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let print = fingerprint(&key);
        let k = key_text.as_str();
        for text in [
            k.to_string(),
            format!("{k} root@backup"),
            format!("[backup.example]:2222 {k}"),
            format!("|1|abc=|def= {k}"),
            print,
        ] {
            let pin: HostKeyPin = text.parse().unwrap();
            pin.check(&presented(k), "backup.example", 0).unwrap();
        }
        let ca: HostKeyPin = format!("@cert-authority *.example {k}").parse().unwrap();
        assert!(matches!(ca, HostKeyPin::CertAuthority(_)));
        for bad in [
            "",
            "SHA256:short",
            "@revoked * ssh-ed25519 AAAA",
            "ssh-ed25519 !!!",
            "host",
        ] {
            assert!(bad.parse::<HostKeyPin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn another_key_is_refused_with_both_fingerprints() {
        let (pinned, other) = (key(1), key(2));
        let shown: PublicKeyOrCertificate = other.clone().into();
        for pin in [
            HostKeyPin::Key(pinned.clone()),
            HostKeyPin::Fingerprint(fingerprint(&pinned)),
        ] {
            let err = pin.check(&shown, "h", 0).unwrap_err();
            assert!(err.contains(&fingerprint(&pinned)), "{err}");
            assert!(err.contains(&fingerprint(&other)), "{err}");
            assert!(err.contains("intercepting"), "{err}");
        }
        let ca = HostKeyPin::CertAuthority(pinned.clone());
        let err = ca.check(&pinned.into(), "h", 0).unwrap_err();
        assert!(err.contains("bare host key"), "{err}");
    }
}
