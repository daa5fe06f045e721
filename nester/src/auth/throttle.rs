//! Sign-in throttling (ASVS 2.2.1): progressive delays per account and per client IP, and at
//! most 100 failed attempts per hour on one account. Keyed on the user name as typed, so an
//! unknown name is throttled exactly like a real one and tells an attacker nothing.

use crate::db::Failures;

/// Failures are counted over this window.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;
/// Failures an account may have before each further attempt waits.
pub const ACCOUNT_FREE: u32 = 5;
/// Failures one IP may have (over all names) before each further attempt waits.
pub const IP_FREE: u32 = 20;
/// The longest progressive wait.
pub const MAX_DELAY_SECS: u64 = 300;
/// Failed attempts per account and hour, at most (ASVS 2.2.1 allows 100).
pub const HOURLY_CAP: u32 = 100;

/// Whether an attempt may be checked now or must wait this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    Wait(u64),
}

/// 1 s after the first failure past the free ones, then doubling up to five minutes.
fn delay_secs(failures: u32, free: u32) -> u64 {
    if failures < free {
        return 0;
    }
    1u64.checked_shl(failures - free)
        .unwrap_or(u64::MAX)
        .min(MAX_DELAY_SECS)
}

fn wait_until(last_ms: Option<i64>, delay_secs: u64, now_ms: i64) -> u64 {
    let Some(last) = last_ms else { return 0 };
    let delay_ms = i64::try_from(delay_secs * 1000).unwrap_or(i64::MAX);
    let ready = last.saturating_add(delay_ms);
    u64::try_from(ready - now_ms).map_or(0, |ms| ms.div_ceil(1000))
}

pub fn verdict(f: &Failures, now_ms: i64) -> Verdict {
    let mut wait = 0;
    if f.account >= HOURLY_CAP
        && let Some(first) = f.account_first_ms
    {
        wait = wait_until(Some(first), (WINDOW_MS / 1000) as u64, now_ms);
    }
    wait = wait
        .max(wait_until(
            f.account_last_ms,
            delay_secs(f.account, ACCOUNT_FREE),
            now_ms,
        ))
        .max(wait_until(f.ip_last_ms, delay_secs(f.ip, IP_FREE), now_ms));
    if wait == 0 {
        Verdict::Go
    } else {
        Verdict::Wait(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u32, last_ms: i64) -> Failures {
        Failures {
            account: n,
            account_last_ms: (n > 0).then_some(last_ms),
            account_first_ms: (n > 0).then_some(0),
            ..Failures::default()
        }
    }

    #[test]
    fn free_attempts_then_doubling_waits_capped() {
        assert_eq!(verdict(&account(4, 1000), 1000), Verdict::Go);
        assert_eq!(verdict(&account(5, 1000), 1000), Verdict::Wait(1));
        assert_eq!(verdict(&account(5, 1000), 2000), Verdict::Go);
        assert_eq!(verdict(&account(7, 1000), 1000), Verdict::Wait(4));
        assert_eq!(verdict(&account(7, 1000), 3500), Verdict::Wait(2));
        assert_eq!(verdict(&account(40, 1000), 1000), Verdict::Wait(300));
    }

    #[test]
    fn the_hourly_cap_holds_until_the_first_failure_leaves_the_window() {
        let f = account(HOURLY_CAP, 3_000_000);
        assert_eq!(verdict(&f, 3_300_000), Verdict::Wait(300));
        assert_eq!(verdict(&f, WINDOW_MS - 1000), Verdict::Wait(1));
        assert_eq!(verdict(&f, WINDOW_MS), Verdict::Go);
    }

    #[test]
    fn one_ip_trying_many_names_waits_too() {
        let f = Failures {
            ip: IP_FREE + 2,
            ip_last_ms: Some(10_000),
            ..Failures::default()
        };
        assert_eq!(verdict(&f, 10_000), Verdict::Wait(4));
        assert_eq!(verdict(&Failures::default(), 0), Verdict::Go);
    }
}
