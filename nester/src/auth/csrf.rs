//! Cross-site request forgery (ASVS 4.2.2, 3.5.3): every state-changing request of a browser
//! session carries the session's CSRF token (form field `csrf` or header `X-CSRF-Token`),
//! and its `Origin` / `Sec-Fetch-Site`, when sent, say it came from this site. Requests with
//! an API token are exempt: a browser never adds that header on its own.

use axum::http::{HeaderMap, header};

/// Form field that carries the token.
pub const FIELD: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";

/// Whether the browser says the request came from a page of this site. Absent headers
/// (scripts, old browsers) pass; the token still has to match.
pub fn same_origin(headers: &HeaderMap, host: Option<&str>) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
    {
        return false;
    }
    match (text(header::ORIGIN), host) {
        (Some(origin), Some(host)) => origin == format!("https://{host}"),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The token a request carries: the header, else the form field of a url-encoded body.
pub fn token_in<'a>(headers: &'a HeaderMap, form: &'a [u8]) -> Option<String> {
    if let Some(v) = headers.get(HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    form_urlencoded::parse(form)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

pub fn tokens_match(expected: &str, given: Option<&str>) -> bool {
    given.is_some_and(|g| {
        g.len() == expected.len()
            && g.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origin_and_fetch_metadata() {
        let mut h = HeaderMap::new();
        assert!(
            same_origin(&h, Some("nester:8443")),
            "no headers: token decides"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://nester:8443"),
        );
        assert!(same_origin(&h, Some("nester:8443")));
        assert!(!same_origin(&h, Some("other:8443")));
        assert!(!same_origin(&h, None));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, Some("nester:8443")));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h, Some("nester:8443")));
    }

    #[test]
    fn token_from_header_or_form() {
        let mut h = HeaderMap::new();
        assert_eq!(token_in(&h, b"a=1&csrf=t%2Bk"), Some("t+k".into()));
        assert_eq!(token_in(&h, b"a=1"), None);
        h.insert(HEADER, HeaderValue::from_static("hdr"));
        assert_eq!(token_in(&h, b"csrf=form"), Some("hdr".into()));
        assert!(tokens_match("abc", Some("abc")));
        assert!(!tokens_match("abc", Some("abd")));
        assert!(!tokens_match("abc", Some("ab")));
        assert!(!tokens_match("abc", None));
    }
}
