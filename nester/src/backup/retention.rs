//! Which backups the server keeps: the newest `keep_last`, plus the newest backup of each of
//! the `keep_daily` most recent days that have one, and of each of the `keep_weekly` most
//! recent ISO weeks that have one (as restic and borg count). Everything else goes, but never
//! the newest backup.

use std::collections::BTreeSet;

use time::Date;
use time::macros::format_description;

use super::sftp::PREFIX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
}

/// The day a backup was made, from its name (`seahawks-backup-2026-12-02T101500Z`).
fn day(name: &str) -> Option<Date> {
    let date = name.strip_prefix(PREFIX)?.get(..10)?;
    Date::parse(date, format_description!("[year]-[month]-[day]")).ok()
}

/// Of `names` (any order), the ones to delete, oldest first. Names that are not backups'
/// are never deleted.
pub fn to_delete(names: &[String], policy: Policy) -> Vec<String> {
    let mut dated: Vec<(&String, Date)> = names
        .iter()
        .filter_map(|n| day(n).map(|d| (n, d)))
        .collect();
    // Newest first (names sort by time).
    dated.sort_by(|a, b| b.0.cmp(a.0));
    let mut keep: BTreeSet<&String> = BTreeSet::new();
    keep.extend(
        dated
            .iter()
            .take(policy.keep_last.max(1) as usize)
            .map(|(n, _)| *n),
    );
    let mut newest_of = |key: &dyn Fn(Date) -> (i32, u32), count: u32| {
        let mut seen = BTreeSet::new();
        for (name, date) in &dated {
            if seen.len() >= count as usize {
                break;
            }
            if seen.insert(key(*date)) {
                keep.insert(*name);
            }
        }
    };
    newest_of(&|d| (d.year(), d.ordinal().into()), policy.keep_daily);
    newest_of(
        &|d| {
            let (year, week, _) = d.to_iso_week_date();
            (year, week.into())
        },
        policy.keep_weekly,
    );
    let mut delete: Vec<String> = dated
        .iter()
        .filter(|(n, _)| !keep.contains(n))
        .map(|(n, _)| (*n).clone())
        .collect();
    delete.sort();
    delete
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One backup at 01:00 and 13:00 each day from 2026-11-01 for `days` days.
    fn twice_a_day(days: u32) -> Vec<String> {
        let start = Date::from_calendar_date(2026, time::Month::November, 1).unwrap();
        (0..days)
            .flat_map(|i| {
                let d = start + time::Duration::days(i.into());
                [
                    format!("{PREFIX}{d}T010000Z"),
                    format!("{PREFIX}{d}T130000Z"),
                ]
            })
            .collect()
    }

    #[test]
    fn the_policy_keeps_exactly_what_it_says() {
        let names = twice_a_day(30); // 2026-11-01 (a Sunday) to 2026-11-30
        let policy = Policy {
            keep_last: 3,
            keep_daily: 5,
            keep_weekly: 3,
        };
        let delete = to_delete(&names, policy);
        let kept: Vec<&String> = names.iter().filter(|n| !delete.contains(n)).collect();
        let expected = [
            // Weekly: ISO weeks 49 (Mon 30th), 48 (23rd to 29th, its newest kept anyway) and
            // 47 (16th to 22nd), whose newest is the 22nd's.
            "2026-11-22T130000Z",
            // Daily: the newest of the 26th to the 30th.
            "2026-11-26T130000Z",
            "2026-11-27T130000Z",
            "2026-11-28T130000Z",
            // Last 3 (and the 29th's and 30th's newest).
            "2026-11-29T130000Z",
            "2026-11-30T010000Z",
            "2026-11-30T130000Z",
        ];
        let expected: Vec<String> = expected.iter().map(|s| format!("{PREFIX}{s}")).collect();
        assert_eq!(kept, expected.iter().collect::<Vec<_>>());
        assert_eq!(delete.len(), names.len() - expected.len());
    }

    #[test]
    fn the_newest_stays_and_strangers_are_left_alone() {
        let mut names = twice_a_day(2);
        names.push("notes.txt".into());
        let none = Policy {
            keep_last: 0,
            keep_daily: 0,
            keep_weekly: 0,
        };
        let delete = to_delete(&names, none);
        assert_eq!(delete.len(), 3);
        assert!(!delete.contains(&format!("{PREFIX}2026-11-02T130000Z")));
        assert!(!delete.contains(&"notes.txt".to_string()));
    }
}
