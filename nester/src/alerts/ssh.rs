//! A harvester that did not install the SSH trust it was given (`ssh.trust_behind`): its box
//! still lets in certificates and keys revoked since, or does not trust a new CA. It says so
//! at its next fetch (it holds less than it was given before); the alert resolves when it
//! holds what it was given. A harvester that stopped fetching is `probe.offline`'s, or no
//! longer keeps its box's trust (`[ssh]` removed): its alert resolves a day after its last
//! fetch.

use crate::db::alerts::{Raise, Severity};
use crate::db::ssh_trust::Holder;

pub const RULE: &str = "ssh.trust_behind";

/// A harvester not heard from for this long no longer counts.
const FORGOTTEN_MS: i64 = 24 * 3_600_000;

pub fn judge(holders: &[Holder], now_ms: i64, raise: &mut Vec<Raise>) {
    for h in holders
        .iter()
        .filter(|h| h.behind && now_ms - h.seen_ms < FORGOTTEN_MS)
    {
        let held = h
            .held_version
            .map_or("none".to_string(), |v| format!("version {v}"));
        raise.push(Raise {
            rule: RULE,
            subject: format!("probe:{}", h.probe_id),
            site: Some(h.site.clone()),
            probe_id: Some(h.probe_id.clone()),
            severity: Severity::Critical,
            summary: format!(
                "probe at {}: its box's SSH trust is {held}, it was given version {}; \
                 revocations since do not hold there (the harvester's log says why)",
                h.site, h.served_version
            ),
            details: serde_json::Value::Null,
            count: 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harvesters_that_failed_to_install_and_still_fetch_are_raised() {
        let holder = |id: &str, behind, seen_ms| Holder {
            probe_id: id.into(),
            site: "s".into(),
            served_version: 4,
            held_version: Some(3),
            seen_ms,
            behind,
        };
        let mut raised = Vec::new();
        let now = FORGOTTEN_MS + 1000;
        let holders = [
            holder("a", false, now),
            holder("b", true, now),
            holder("gone", true, 0),
        ];
        judge(&holders, now, &mut raised);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].subject, "probe:b");
        assert!(
            raised[0]
                .summary
                .contains("version 3, it was given version 4")
        );
    }
}
