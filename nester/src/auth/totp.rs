//! TOTP (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of skew either way, and the
//! step of each accepted code, so the caller can refuse it the second time.

use totp_rs::{Builder, Totp};

pub const STEP_SECS: u64 = 30;
const ISSUER: &str = "Seahawks";

/// 160 random bits, the length RFC 4226 recommends.
pub fn new_secret() -> anyhow::Result<Vec<u8>> {
    Ok(super::secret::random::<20>()?.to_vec())
}

/// SHA-1, 6 digits, 30 s, one step of skew: what every authenticator app understands.
fn totp(secret: &[u8], account: &str) -> Totp {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build_noncompliant()
}

/// `otpauth://totp/Seahawks:NAME?secret=...&issuer=Seahawks`, for authenticator apps.
pub fn otpauth_url(secret: &[u8], account: &str) -> anyhow::Result<String> {
    totp(secret, account)
        .to_url()
        .map_err(|e| anyhow::anyhow!("cannot write the otpauth URL: {e}"))
}

/// The secret as people type it into an authenticator (base32, no padding).
pub fn base32(secret: &[u8]) -> String {
    totp(secret, "").secret().to_base32()
}

/// The code for the step that holds `unix_secs`.
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    totp(secret, "").generate(unix_secs).to_string()
}

/// The time step `code` belongs to, if it is right for the step of `unix_secs` or one either
/// side (compared in constant time).
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "")
        .check(code, unix_secs)
        .and_then(|step| i64::try_from(step).ok())
}

/// `text` as a QR code in SVG, drawn here so the secret never leaves the server.
pub fn qr_svg(text: &str) -> anyhow::Result<String> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|e| anyhow::anyhow!("cannot draw a QR code: {e:?}"))?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="240" height="240" role="img" aria-label="QR code of the TOTP secret"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 secret "12345678901234567890" (8-digit vectors there;
    /// these are their last 6 digits).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1_111_111_109), "081804");
        assert_eq!(code_at(secret, 1_234_567_890), "005924");
        assert_eq!(code_at(secret, 2_000_000_000), "279037");
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = new_secret().unwrap();
        let now = 1_800_000_015;
        let step = i64::try_from(now / STEP_SECS).unwrap();
        let at = |offset: i64| code_at(&secret, now.checked_add_signed(offset).unwrap());
        assert_eq!(matching_step(&secret, &at(0), now), Some(step));
        assert_eq!(matching_step(&secret, &at(-30), now), Some(step - 1));
        assert_eq!(matching_step(&secret, &at(30), now), Some(step + 1));
        for far in [-90, -60, 60, 90] {
            let code = at(far);
            // A far code may collide with a near one by chance (1 in 10^6): only then accept.
            let near = [-30, 0, 30].iter().any(|o| at(*o) == code);
            assert_eq!(matching_step(&secret, &code, now).is_some(), near, "{far}");
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "12345a", now), None);
    }

    #[test]
    fn otpauth_url_and_qr() {
        let secret = b"12345678901234567890";
        let url = otpauth_url(secret, "ana").unwrap();
        assert!(url.starts_with("otpauth://totp/Seahawks:ana?"), "{url}");
        assert!(url.contains(&format!("secret={}", base32(secret))), "{url}");
        let svg = qr_svg(&url).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    }
}
