//! The rules: which events count against a client prefix, and the sliding windows that
//! count them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ipnet::IpNet;

use shared::protocol::code;

use super::{Event, ThreatConfig};
use crate::db::alerts::{Raise, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A wrong password or code, or a throttled attempt, on the sign-in pages.
    SignIn,
    /// A TLS handshake that failed (no or a bad certificate, not TLS at all).
    Tls,
    /// A 404: a scanner walking paths.
    NotFound,
    /// A 401 or 403 elsewhere: guessing tokens, probing routes.
    Unauthorized,
    /// A revoked (or deleted) probe's certificate still in use on ingest.
    RevokedProbe,
    /// A report whose signature, signing certificate or signer does not hold.
    BadSignature,
    /// An enrollment with a token that is unknown, expired, used up or revoked.
    EnrollmentToken,
}

/// Codes of the ingest refusals that are security events of their own.
const REVOKED_PROBE: [&str; 2] = [code::PROBE_REVOKED, code::UNKNOWN_PROBE];
const BAD_SIGNATURE: [&str; 4] = [
    "bad_signature",
    "untrusted_certificate",
    "key_id_mismatch",
    code::PROBE_MISMATCH,
];
const ENROLLMENT_TOKEN: [&str; 4] = [
    code::TOKEN_INVALID,
    code::TOKEN_EXPIRED,
    code::TOKEN_USED_UP,
    code::TOKEN_REVOKED,
];

impl Rule {
    /// The rule an event counts for, if any.
    pub fn of(e: &Event<'_>) -> Option<Self> {
        if let Some(reason) = e.refused {
            return (reason.starts_with("tls_") && reason != "tls_closed").then_some(Self::Tls);
        }
        if let Some(code) = e.code {
            if REVOKED_PROBE.contains(&code) {
                return Some(Self::RevokedProbe);
            }
            if BAD_SIGNATURE.contains(&code) {
                return Some(Self::BadSignature);
            }
            if ENROLLMENT_TOKEN.contains(&code) {
                return Some(Self::EnrollmentToken);
            }
        }
        let sign_in = e.route == "/login" || e.route == "/login/mfa";
        match e.status {
            401 | 429 if sign_in && e.method == "POST" => Some(Self::SignIn),
            404 => Some(Self::NotFound),
            401 | 403 if !sign_in => Some(Self::Unauthorized),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in_failures",
            Self::Tls => "tls_failures",
            Self::NotFound => "not_found_flood",
            Self::Unauthorized => "unauthorized_flood",
            Self::RevokedProbe => "revoked_probe",
            Self::BadSignature => "bad_signature",
            Self::EnrollmentToken => "enrollment_token",
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Self::SignIn => "failed sign-ins",
            Self::Tls => "failed TLS handshakes",
            Self::NotFound => "requests for missing pages",
            Self::Unauthorized => "refused requests",
            Self::RevokedProbe => "uses of a revoked or unknown probe",
            Self::BadSignature => "reports with a bad signature",
            Self::EnrollmentToken => "enrollments with a bad token",
        }
    }

    /// The alert a single event of this rule raises, when it is worth one on its own (a
    /// revoked probe's key still in use is, one 404 is not): about the probe when known,
    /// else about the client's prefix.
    pub fn alert(self, e: &Event<'_>, prefix: IpNet) -> Option<Raise> {
        let (rule, severity) = match self {
            Self::RevokedProbe => ("security.revoked_probe", Severity::Critical),
            Self::BadSignature => ("security.bad_signature", Severity::Critical),
            Self::EnrollmentToken => ("security.enrollment_token", Severity::Warning),
            _ => return None,
        };
        let subject = e
            .who
            .map_or_else(|| format!("prefix:{prefix}"), str::to_string);
        let code = e.code.unwrap_or("-");
        Some(Raise {
            rule,
            probe_id: e
                .who
                .and_then(|w| w.strip_prefix("probe:"))
                .map(str::to_string),
            site: None,
            summary: format!("{subject}: {} ({code}) from {}", self.what(), e.ip),
            subject,
            severity,
            details: serde_json::json!({
                "client_ip": e.ip,
                "code": code,
                "route": e.route,
            }),
            count: 1,
        })
    }
}

pub struct Detector {
    window_ms: i64,
    thresholds: [(Rule, u32); 7],
    hits: Mutex<HashMap<(Rule, IpNet), VecDeque<i64>>>,
}

/// Most prefixes tracked at once: past this, the quietest are forgotten (a flood of spoofed
/// sources cannot exhaust memory).
const MAX_TRACKED: usize = 100_000;

impl Detector {
    pub fn new(c: &ThreatConfig) -> Self {
        Self {
            window_ms: i64::try_from(c.window.as_millis()).unwrap_or(i64::MAX),
            thresholds: [
                (Rule::SignIn, c.sign_in_failures),
                (Rule::Tls, c.tls_failures),
                (Rule::NotFound, c.not_found),
                (Rule::Unauthorized, c.unauthorized),
                (Rule::RevokedProbe, c.ingest_refusals),
                (Rule::BadSignature, c.ingest_refusals),
                (Rule::EnrollmentToken, c.ingest_refusals),
            ],
            hits: Mutex::default(),
        }
    }

    /// Counts a hit at `now_ms`; `Some(count)` when it reaches the rule's threshold (the
    /// count then starts over).
    pub fn hit(&self, rule: Rule, prefix: IpNet, now_ms: i64) -> Option<u32> {
        let threshold = self
            .thresholds
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or(u32::MAX, |(_, t)| *t);
        let mut hits = self.hits.lock().ok()?;
        if hits.len() >= MAX_TRACKED {
            let cutoff = now_ms - self.window_ms;
            hits.retain(|_, times| times.back().is_some_and(|t| *t > cutoff));
        }
        let times = hits.entry((rule, prefix)).or_default();
        times.push_back(now_ms);
        while times.front().is_some_and(|t| *t <= now_ms - self.window_ms) {
            times.pop_front();
        }
        let count = u32::try_from(times.len()).unwrap_or(u32::MAX);
        if count >= threshold.max(1) {
            times.clear();
            return Some(count);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_events_count_for_which_rule() {
        let e = |refused, method, route, status, code| Event {
            ip: "192.0.2.7".parse().unwrap(),
            refused,
            method,
            route,
            status,
            code,
            who: None,
        };
        let of =
            |refused, method, route, status| Rule::of(&e(refused, method, route, status, None));
        assert_eq!(
            of(Some("tls_bad_certificate"), "-", "-", 0),
            Some(Rule::Tls)
        );
        assert_eq!(of(Some("tls_closed"), "-", "-", 0), None);
        assert_eq!(of(Some("banned"), "-", "-", 0), None);
        assert_eq!(of(None, "POST", "/login", 401), Some(Rule::SignIn));
        assert_eq!(of(None, "POST", "/login/mfa", 429), Some(Rule::SignIn));
        assert_eq!(of(None, "GET", "/login", 200), None);
        assert_eq!(of(None, "GET", "-", 404), Some(Rule::NotFound));
        assert_eq!(
            of(None, "GET", "/api/v1/probes", 401),
            Some(Rule::Unauthorized)
        );
        assert_eq!(
            of(None, "POST", "/admin/users", 403),
            Some(Rule::Unauthorized)
        );
        assert_eq!(of(None, "POST", "/v1/reports", 201), None);
        // Ingest refusals by their code, before their status.
        let coded = |status, code| Rule::of(&e(None, "POST", "/v1/reports", status, Some(code)));
        assert_eq!(coded(403, "probe_revoked"), Some(Rule::RevokedProbe));
        assert_eq!(coded(403, "unknown_probe"), Some(Rule::RevokedProbe));
        assert_eq!(coded(422, "bad_signature"), Some(Rule::BadSignature));
        assert_eq!(
            coded(422, "untrusted_certificate"),
            Some(Rule::BadSignature)
        );
        assert_eq!(coded(403, "token_expired"), Some(Rule::EnrollmentToken));
        assert_eq!(coded(401, "token_invalid"), Some(Rule::EnrollmentToken));
        assert_eq!(coded(409, "sequence_conflict"), None);
        assert_eq!(coded(400, "malformed_jws"), None);
    }

    #[test]
    fn only_security_events_of_their_own_raise_an_alert_each() {
        let p: IpNet = "192.0.2.7/32".parse().unwrap();
        let mut e = Event {
            ip: "192.0.2.7".parse().unwrap(),
            refused: None,
            method: "POST",
            route: "/v1/reports",
            status: 403,
            code: Some("probe_revoked"),
            who: Some("probe:0b9c"),
        };
        let a = Rule::RevokedProbe.alert(&e, p).unwrap();
        assert_eq!(
            (a.rule, a.subject.as_str(), a.severity),
            ("security.revoked_probe", "probe:0b9c", Severity::Critical)
        );
        assert!(a.summary.contains("192.0.2.7"), "{}", a.summary);
        e.who = None;
        e.code = Some("token_expired");
        let a = Rule::EnrollmentToken.alert(&e, p).unwrap();
        assert_eq!(a.subject, "prefix:192.0.2.7/32");
        assert!(Rule::NotFound.alert(&e, p).is_none());
        assert!(Rule::SignIn.alert(&e, p).is_none());
    }

    #[test]
    fn a_threshold_within_the_window_fires_and_older_hits_do_not_count() {
        let d = Detector::new(&ThreatConfig::default());
        let p: IpNet = "192.0.2.7/32".parse().unwrap();
        let minute = 60_000;
        // Four failures a minute apart, then a fifth at 11 minutes: the first two have left
        // the ten-minute window, so three count.
        for i in 0..4 {
            assert_eq!(d.hit(Rule::SignIn, p, i * minute), None);
        }
        assert_eq!(d.hit(Rule::SignIn, p, 11 * minute), None);
        // Two more at once make five within ten minutes.
        assert_eq!(d.hit(Rule::SignIn, p, 11 * minute + 1), None);
        assert_eq!(d.hit(Rule::SignIn, p, 11 * minute + 2), Some(5));
        // The count starts over after a ban.
        assert_eq!(d.hit(Rule::SignIn, p, 11 * minute + 3), None);
        // Other rules and prefixes count apart.
        let q: IpNet = "192.0.2.8/32".parse().unwrap();
        assert_eq!(d.hit(Rule::SignIn, q, 0), None);
        assert_eq!(d.hit(Rule::Tls, p, 0), None);
    }
}
