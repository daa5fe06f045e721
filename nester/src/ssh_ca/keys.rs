//! Which keys the CAs certify, read from an OpenSSH public key line, and the serials they
//! give certificates.

use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;

/// A public key line longer than this is not one.
const MAX_LINE: usize = 16 * 1024;

/// The key in `text` if the CAs certify it: Ed25519, ECDSA, their security-key forms, or RSA
/// of at least 3072 bits. The refusal says what to do.
pub fn accepted(text: &str) -> Result<PublicKey, &'static str> {
    if text.len() > MAX_LINE {
        return Err("that is not a public key: it is too long");
    }
    let key = PublicKey::from_openssh(text.trim()).map_err(
        |_| "that is not an OpenSSH public key line: paste the contents of ~/.ssh/id_ed25519.pub",
    )?;
    match key.key_data() {
        KeyData::Ed25519(_)
        | KeyData::SkEd25519(_)
        | KeyData::Ecdsa(_)
        | KeyData::SkEcdsaSha2NistP256(_) => Ok(key),
        KeyData::Rsa(rsa) if rsa.n().as_positive_bytes().map_or(0, <[u8]>::len) * 8 >= 3072 => {
            Ok(key)
        }
        KeyData::Rsa(_) => Err("RSA keys must have at least 3072 bits; an Ed25519 key is better"),
        _ => Err("that key type is not accepted: use Ed25519 (ssh-keygen -t ed25519)"),
    }
}

/// A random serial in 1..2^53 (exact as a JSON number; 0 is OpenSSH's "no serial").
pub fn serial() -> anyhow::Result<u64> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok((u64::from_be_bytes(bytes) >> 11).max(1))
}

/// Seconds since the epoch, for a certificate's validity (0 before it).
pub fn unix_secs(ms: i64) -> u64 {
    u64::try_from(ms.div_euclid(1000)).unwrap_or(0)
}
