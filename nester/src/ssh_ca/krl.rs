//! OpenSSH key revocation lists (KRL), encoded as OpenSSH's `PROTOCOL.krl` specifies, for
//! `sshd`'s `RevokedKeys` and `ssh-keygen -Q`. No crate writes them. We emit the sections
//! our CA needs: certificate serials revoked, per CA key, and keys revoked outright by their
//! SHA-256 hash. Unsigned: the KRL travels to harvesters inside the mTLS connection.
//!
//! Format (all integers big-endian, `string` = u32 length + bytes):
//! header `u64 magic "SSHKRL\n\0"`, `u32 format 1`, `u64 krl_version`, `u64 generated_date`,
//! `u64 flags`, `string reserved`, `string comment`; then sections, each `byte type` and
//! `string data`. Section 1 (certificates): `string ca_key`, `string reserved`, then
//! subsections, each `byte type` and `string data`; subsection 0x20 is a list of `u64`
//! serials. Section 5 is the sorted `string` SHA-256 hashes of the plain keys' wire blobs
//! (a certificate is refused when its key's hash is there).

use std::collections::{BTreeMap, BTreeSet};

use russh::keys::PublicKey;

const MAGIC: u64 = 0x5353_484b_524c_0a00;
const FORMAT_VERSION: u32 = 1;
const SECTION_CERTIFICATES: u8 = 1;
const SECTION_FINGERPRINT_SHA256: u8 = 5;
const CERT_SERIAL_LIST: u8 = 0x20;

/// What a KRL revokes.
#[derive(Debug, Default, Clone)]
pub struct Krl {
    /// Rises with every change: sshd does not care, harvesters compare it.
    pub version: u64,
    /// Seconds since the epoch.
    pub generated: u64,
    pub comment: String,
    /// Revoked certificate serials, by the wire blob of the CA key that signed them.
    serials: BTreeMap<Vec<u8>, BTreeSet<u64>>,
    /// SHA-256 of the wire blob of each key revoked outright.
    key_hashes: BTreeSet<[u8; 32]>,
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // KRL fields are far below 4 GiB.
    put_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
}

fn blob(key: &PublicKey) -> anyhow::Result<Vec<u8>> {
    Ok(key.to_bytes()?)
}

impl Krl {
    pub fn new(version: u64, generated: u64, comment: &str) -> Self {
        Self {
            version,
            generated,
            comment: comment.into(),
            ..Self::default()
        }
    }

    /// Revokes the certificate with `serial` signed by `ca`.
    pub fn revoke_serial(&mut self, ca: &PublicKey, serial: u64) -> anyhow::Result<()> {
        // Serial 0 means "no serial" to OpenSSH and cannot be revoked by serial.
        anyhow::ensure!(serial != 0, "serial 0 cannot be revoked by serial");
        self.serials.entry(blob(ca)?).or_default().insert(serial);
        Ok(())
    }

    /// Revokes `key` outright, and every certificate for it.
    pub fn revoke_key(&mut self, key: &PublicKey) -> anyhow::Result<()> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &blob(key)?);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        self.key_hashes.insert(hash);
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u64(&mut out, MAGIC);
        put_u32(&mut out, FORMAT_VERSION);
        put_u64(&mut out, self.version);
        put_u64(&mut out, self.generated);
        put_u64(&mut out, 0);
        put_string(&mut out, b"");
        put_string(&mut out, self.comment.as_bytes());
        for (ca, serials) in &self.serials {
            let mut section = Vec::new();
            put_string(&mut section, ca);
            put_string(&mut section, b"");
            let mut list = Vec::new();
            for serial in serials {
                put_u64(&mut list, *serial);
            }
            section.push(CERT_SERIAL_LIST);
            put_string(&mut section, &list);
            out.push(SECTION_CERTIFICATES);
            put_string(&mut out, &section);
        }
        if !self.key_hashes.is_empty() {
            let mut section = Vec::new();
            for hash in &self.key_hashes {
                put_string(&mut section, hash);
            }
            out.push(SECTION_FINGERPRINT_SHA256);
            put_string(&mut out, &section);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        PublicKey::from(russh::keys::ssh_key::public::KeyData::Ed25519(pair.public))
    }

    #[test]
    fn an_empty_krl_is_its_header() {
        let krl = Krl::new(7, 1_700_000_000, "c");
        let bytes = krl.encode();
        assert_eq!(&bytes[..8], b"SSHKRL\n\0");
        assert_eq!(&bytes[8..12], &[0, 0, 0, 1]);
        assert_eq!(&bytes[12..20], &7u64.to_be_bytes());
        assert_eq!(&bytes[20..28], &1_700_000_000u64.to_be_bytes());
        assert_eq!(bytes.len(), 8 + 4 + 8 + 8 + 8 + 4 + 4 + 1);
    }

    #[test]
    fn serials_are_grouped_by_ca_and_sorted_and_zero_is_refused() {
        let (a, b) = (key(1), key(2));
        let mut krl = Krl::default();
        krl.revoke_serial(&a, 9).unwrap();
        krl.revoke_serial(&a, 3).unwrap();
        krl.revoke_serial(&b, 5).unwrap();
        krl.revoke_serial(&a, 3).unwrap();
        assert!(krl.revoke_serial(&a, 0).is_err());
        let bytes = krl.encode();
        let has = |part: &[u8]| bytes.windows(part.len()).any(|w| w == part);
        // a's serials in one list, sorted, once each; b's in a list of its own.
        let mut a_list = vec![CERT_SERIAL_LIST, 0, 0, 0, 16];
        a_list.extend(3u64.to_be_bytes());
        a_list.extend(9u64.to_be_bytes());
        let mut b_list = vec![CERT_SERIAL_LIST, 0, 0, 0, 8];
        b_list.extend(5u64.to_be_bytes());
        assert!(has(&a_list) && has(&b_list));
        assert!(has(&a.to_bytes().unwrap()) && has(&b.to_bytes().unwrap()));
        let sections = bytes[8 + 4 + 8 + 8 + 8 + 4 + 4..].to_vec();
        assert_eq!(sections[0], SECTION_CERTIFICATES);
    }
}
