//! Credentials: the user name and password policy (ASVS 4.0.3 V2.1), Argon2id hashing off
//! the async runtime, and generated passwords. There is no default account or password
//! anywhere: the first admin gets one at `nester init`. Roles are stored with users
//! ([`Role`](crate::db::Role)).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use base64::Engine;

/// Shortest accepted password, in characters (ASVS 2.1.1).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in characters (ASVS 2.1.2 asks for at least 64 to be allowed).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest user name.
pub const MAX_USERNAME_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters (this one has {0})")]
    TooShort(usize),
    #[error("a password may have at most {MAX_PASSWORD_CHARS} characters (this one has {0})")]
    TooLong(usize),
    #[error(
        "a user name is 1 to {MAX_USERNAME_LEN} characters: letters, digits, `.`, `_`, `-` or `@`"
    )]
    Username,
}

/// Checks a new password: length only, counted in characters, any Unicode (ASVS 2.1.1,
/// 2.1.2, 2.1.4, 2.1.9: no composition rules). Nothing is trimmed or truncated.
pub fn check_password(password: &str) -> Result<(), PolicyError> {
    match password.chars().count() {
        n if n < MIN_PASSWORD_CHARS => Err(PolicyError::TooShort(n)),
        n if n > MAX_PASSWORD_CHARS => Err(PolicyError::TooLong(n)),
        _ => Ok(()),
    }
}

pub fn check_username(name: &str) -> Result<(), PolicyError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USERNAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    ok.then_some(()).ok_or(PolicyError::Username)
}

/// A random password of 24 characters (144 bits), for a person to store in a password
/// manager.
pub fn generate_password() -> anyhow::Result<String> {
    let bytes = crate::auth::secret::random::<18>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Argon2id with the OWASP baseline: 19 MiB, 2 passes, 1 lane.
#[allow(
    clippy::expect_used,
    reason = "constant parameters, checked by the tests"
)]
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("the OWASP baseline is valid");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes on a blocking thread: about 20 ms of CPU and 19 MiB each, never on the runtime.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    })
    .await?
}

/// Whether `password` matches the stored PHC string (parameters come from the string).
pub async fn verify_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        argon2()
            .verify_password(password.as_bytes(), phc.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Role;

    #[test]
    fn length_in_characters_and_any_unicode() {
        assert_eq!(
            check_password("short-pass!"),
            Err(PolicyError::TooShort(11))
        );
        assert!(check_password("twelve-chars").is_ok());
        // Twelve characters, many more bytes: counted as characters.
        assert!(check_password("пароль-пароль").is_ok());
        assert!(check_password("🦅🦅🦅🦅🦅🦅🦅🦅🦅🦅🦅🦅").is_ok());
        assert_eq!(
            check_password(&"x".repeat(129)),
            Err(PolicyError::TooLong(129))
        );
        assert!(check_password(&"x".repeat(128)).is_ok());
        // Spaces count and are kept: passphrases are welcome.
        assert!(check_password("correct horse battery").is_ok());
    }

    #[test]
    fn user_names_and_roles() {
        assert!(check_username("ana.lopez@example.net").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("ana lopez").is_err());
        assert!(check_username(&"a".repeat(65)).is_err());
        assert_eq!("NOC".parse::<Role>(), Ok(Role::Noc));
        assert!(
            "root"
                .parse::<Role>()
                .unwrap_err()
                .contains("admin, noc or support")
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_baseline_salted_and_verify() {
        let a = hash_password("correct horse battery".into()).await.unwrap();
        let b = hash_password("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(!a.contains("correct"));
        assert!(verify_password("correct horse battery".into(), a.clone()).await);
        assert!(!verify_password("correct horse battery!".into(), a.clone()).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn generated_passwords_pass_the_policy_and_differ() {
        let a = generate_password().unwrap();
        assert_eq!(a.chars().count(), 24);
        assert!(check_password(&a).is_ok());
        assert_ne!(a, generate_password().unwrap());
    }
}
