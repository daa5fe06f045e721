//! The rules: which events count against a client prefix, and the sliding windows that
//! count them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ipnet::IpNet;

use super::ThreatConfig;

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
}

impl Rule {
    /// The rule an event counts for, if any: a connection `refused` before HTTP, or a
    /// request's `method`, matched `route` and `status`.
    pub fn of(refused: Option<&str>, method: &str, route: &str, status: u16) -> Option<Self> {
        if let Some(reason) = refused {
            return (reason.starts_with("tls_") && reason != "tls_closed").then_some(Self::Tls);
        }
        let sign_in = route == "/login" || route == "/login/mfa";
        match status {
            401 | 429 if sign_in && method == "POST" => Some(Self::SignIn),
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
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Self::SignIn => "failed sign-ins",
            Self::Tls => "failed TLS handshakes",
            Self::NotFound => "requests for missing pages",
            Self::Unauthorized => "refused requests",
        }
    }
}

pub struct Detector {
    window_ms: i64,
    thresholds: [(Rule, u32); 4],
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
        assert_eq!(
            Rule::of(Some("tls_bad_certificate"), "-", "-", 0),
            Some(Rule::Tls)
        );
        assert_eq!(Rule::of(Some("tls_closed"), "-", "-", 0), None);
        assert_eq!(Rule::of(Some("banned"), "-", "-", 0), None);
        assert_eq!(Rule::of(None, "POST", "/login", 401), Some(Rule::SignIn));
        assert_eq!(
            Rule::of(None, "POST", "/login/mfa", 429),
            Some(Rule::SignIn)
        );
        assert_eq!(Rule::of(None, "GET", "/login", 200), None);
        assert_eq!(Rule::of(None, "GET", "-", 404), Some(Rule::NotFound));
        assert_eq!(
            Rule::of(None, "GET", "/api/v1/probes", 401),
            Some(Rule::Unauthorized)
        );
        assert_eq!(
            Rule::of(None, "POST", "/admin/users", 403),
            Some(Rule::Unauthorized)
        );
        assert_eq!(Rule::of(None, "POST", "/v1/reports", 201), None);
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
