//! Security alerts on their way to the database. Detection runs on the request path, so it
//! only notes what to raise here (merging repeats of one alert into a count); the threats job
//! writes them every couple of seconds. A flood of one event is one write per interval, and a
//! flood of distinct ones is bounded in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::alerts::Raise;

/// Most distinct alerts held between two writes; past it, new ones are dropped and counted.
const MAX_PENDING: usize = 10_000;

#[derive(Default)]
pub struct Pending {
    raises: Mutex<HashMap<String, Raise>>,
    dropped: AtomicU64,
}

impl Pending {
    /// Notes `raise`; a repeat of a noted one adds to its count and keeps the latest text and
    /// the highest severity.
    pub fn add(&self, raise: Raise) {
        let Ok(mut raises) = self.raises.lock() else {
            return;
        };
        let key = format!("{}/{}", raise.rule, raise.subject);
        if let Some(noted) = raises.get_mut(&key) {
            noted.count = noted.count.saturating_add(raise.count);
            noted.severity = noted.severity.max(raise.severity);
            noted.summary = raise.summary;
            noted.details = raise.details;
        } else if raises.len() < MAX_PENDING {
            raises.insert(key, raise);
        } else {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "security alerts dropped: too many at once");
            }
        }
    }

    /// Everything noted since the last call.
    pub fn take(&self) -> Vec<Raise> {
        self.raises
            .lock()
            .map(|mut r| r.drain().map(|(_, raise)| raise).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::alerts::Severity;

    fn raise(subject: &str, severity: Severity, summary: &str) -> Raise {
        Raise {
            rule: "security.revoked_probe",
            subject: subject.into(),
            severity,
            summary: summary.into(),
            details: serde_json::Value::Null,
            count: 1,
            site: None,
            probe_id: None,
        }
    }

    #[test]
    fn repeats_merge_into_one_raise_with_their_count() {
        let p = Pending::default();
        for i in 0..100 {
            p.add(raise("probe:a", Severity::Warning, &format!("try {i}")));
        }
        p.add(raise("probe:a", Severity::Critical, "last"));
        p.add(raise("probe:b", Severity::Info, "other"));
        let mut taken = p.take();
        taken.sort_by(|a, b| a.subject.cmp(&b.subject));
        assert_eq!(taken.len(), 2);
        assert_eq!(
            (taken[0].count, taken[0].severity, taken[0].summary.as_str()),
            (101, Severity::Critical, "last")
        );
        assert_eq!(taken[1].count, 1);
        assert!(p.take().is_empty(), "taken once");
    }

    #[test]
    fn distinct_alerts_are_bounded() {
        let p = Pending::default();
        for i in 0..MAX_PENDING + 10 {
            p.add(raise(&format!("probe:{i}"), Severity::Info, "x"));
        }
        assert_eq!(p.take().len(), MAX_PENDING);
        assert_eq!(p.dropped.load(Ordering::Relaxed), 10);
    }
}
