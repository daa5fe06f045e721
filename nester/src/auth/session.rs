//! Session cookies (ASVS V3): `__Host-` prefix, `Secure`, `HttpOnly`, `SameSite=Strict`, no
//! `Domain`, path `/`. The cookie holds 256 random bits; the server keeps their SHA-256.

use axum::http::{HeaderMap, HeaderValue, header};
use time::Duration;

use crate::db::SessionRow;

pub const SESSION_COOKIE: &str = "__Host-seahawks-session";
/// Double-submit token of the sign-in form (there is no session yet to hold one).
pub const LOGIN_COOKIE: &str = "__Host-seahawks-login";

/// When sessions end on their own.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Without a request for this long, a session ends (ASVS 3.3.2).
    pub idle: Duration,
    /// Whatever happens, a session ends this long after sign-in.
    pub absolute: Duration,
}

/// How stale `seen` may get before a request writes it again: a write per minute per
/// session at most, so idle expiry is exact to within this.
pub const TOUCH_EVERY_MS: i64 = 60_000;

impl SessionPolicy {
    pub fn expired(&self, s: &SessionRow, now_ms: i64) -> bool {
        let ms = |d: Duration| i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX);
        now_ms - s.seen_ms >= ms(self.idle) || now_ms - s.created_ms >= ms(self.absolute)
    }
}

/// `Set-Cookie` for a cookie that lives as long as the browser session (the server decides
/// when it stops working).
#[allow(
    clippy::expect_used,
    reason = "names and values are our own ASCII (base64url tokens)"
)]
pub fn set_cookie(name: &str, value: &str) -> HeaderValue {
    HeaderValue::try_from(format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .expect("cookie names and base64url values are valid header text")
}

/// `Set-Cookie` that makes the browser forget `name`.
#[allow(clippy::expect_used, reason = "names are our own ASCII constants")]
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::try_from(format!(
        "{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .expect("cookie names are valid header text")
}

/// The value of cookie `name` in the request, if sent once.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next();
    // Two cookies of the same name: someone planted one. Trust neither.
    if found.next().is_some() {
        return None;
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_flags_and_parsing() {
        let set = set_cookie(SESSION_COOKIE, "abc");
        assert_eq!(
            set,
            "__Host-seahawks-session=abc; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-seahawks-session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-seahawks-session=planted"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }
}
