//! Secrets handed to people: session cookies, API tokens, recovery codes. Each is 128 bits
//! or more from the OS generator ([`random`], the nester's one source of randomness), and
//! only its SHA-256 is stored: these are random, so a fast hash is enough (a password needs
//! Argon2 because people choose it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Prefix of API tokens, so secret scanners and people recognise one.
pub const API_TOKEN_PREFIX: &str = "shk_";
/// Recovery codes given at TOTP setup.
pub const RECOVERY_CODES: usize = 10;

/// `N` bytes from the operating system's generator.
pub fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness available"))?;
    Ok(bytes)
}

/// 256 random bits, base64url: a session or CSRF token.
pub fn token() -> anyhow::Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random::<32>()?))
}

/// A new API token: `shk_` and 256 random bits.
pub fn api_token() -> anyhow::Result<String> {
    Ok(format!("{API_TOKEN_PREFIX}{}", token()?))
}

#[allow(clippy::expect_used, reason = "a SHA-256 digest is always 32 bytes")]
pub fn sha256(secret: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    digest
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes long")
}

/// Lower-case letters and digits without look-alikes (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// `xxxxx-xxxxx`: 10 characters from a 31-letter alphabet, about 50 bits, single use.
pub fn recovery_code() -> anyhow::Result<String> {
    let bytes = random::<10>()?;
    let mut code = String::with_capacity(11);
    for (i, b) in bytes.iter().enumerate() {
        if i == 5 {
            code.push('-');
        }
        // 256 % 31 leaves a bias under 1 %: irrelevant for a single-use code.
        code.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
    }
    Ok(code)
}

/// A fresh set of recovery codes: the codes to show once, and the hashes to store.
pub fn recovery_codes() -> anyhow::Result<(Vec<String>, Vec<[u8; 32]>)> {
    let codes = (0..RECOVERY_CODES)
        .map(|_| recovery_code())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let hashes = codes
        .iter()
        .map(|c| sha256(&normalise_recovery_code(c)))
        .collect();
    Ok((codes, hashes))
}

/// A recovery code as typed, in the form that is hashed: spaces and dashes dropped,
/// lower case.
pub fn normalise_recovery_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_distinct() {
        let a = token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, token().unwrap());
        assert!(api_token().unwrap().starts_with("shk_"));
        let code = recovery_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert!(
            normalise_recovery_code(&code)
                .bytes()
                .all(|b| ALPHABET.contains(&b))
        );
        assert_eq!(normalise_recovery_code(" ABCDE-fghjk "), "abcdefghjk");
        assert_ne!(sha256("a"), sha256("b"));
    }
}
