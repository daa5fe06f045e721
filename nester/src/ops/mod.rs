//! Operations: one function per action people take (revoke a probe, make an enrollment or an
//! API token, manage a user, acknowledge an alert, silence alerts, issue or revoke an SSH
//! certificate, revoke an SSH key) and per read the API and the pages share (sites, a probe,
//! host search, alerts, the audit log), transport-neutral. Each family's refusals are a small
//! error enum ([`Refused`]); the API handlers, the pages and the CLI only parse, call one
//! operation and render, so the three refuse the same things in the same words. The web edge
//! turns a refusal into its status and code (`web/refusal.rs`), the CLI prints its message.
//! `tests/layout.py` keeps this layer free of any transport.

pub mod alerts;
pub mod api_tokens;
pub mod audit;
pub mod enrollment;
pub mod hosts;
pub mod probes;
pub mod query;
pub mod silences;
pub mod sites;
pub mod ssh_certs;
pub mod ssh_keys;
pub mod users;

use crate::db::DbError;

/// What kind of refusal an operation's error is, for the status the web edge answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request itself is wrong (400).
    Invalid,
    /// Not for this caller (403).
    Forbidden,
    /// Nothing of that name, or not of the caller's (404).
    NotFound,
    /// Wait and try again (429).
    Throttled,
    /// Our fault, logged; the caller hears nothing specific (500).
    Internal,
}

/// An operation's error: its kind and a stable code (`shared::protocol` names the ones
/// harvesters act on); its `Display` is the message for the person who asked.
pub trait Refused: std::error::Error {
    fn kind(&self) -> Kind;
    fn code(&self) -> &'static str;
}

/// A failure of ours inside an operation: the detail goes to the log, never to the caller.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Internal(pub String);

impl From<DbError> for Internal {
    fn from(e: DbError) -> Self {
        Self(e.to_string())
    }
}

impl From<anyhow::Error> for Internal {
    fn from(e: anyhow::Error) -> Self {
        Self(format!("{e:#}"))
    }
}

/// A humantime duration (`30m`, `4h`, `1d`) from a minute to `max`, or what to write.
pub fn bounded_duration(text: &str, max: time::Duration) -> Result<time::Duration, String> {
    humantime::parse_duration(text.trim())
        .ok()
        .and_then(|d| time::Duration::try_from(d).ok())
        .filter(|d| *d >= time::Duration::minutes(1) && *d <= max)
        .ok_or_else(|| {
            format!(
                "`{text}` is not a time between 1 minute and {}: write e.g. 30m, 4h or 1d",
                humantime::format_duration(max.unsigned_abs())
            )
        })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A temporary database with a moved clock, for the operations' tests.

    use crate::clock::Clock;
    use crate::db::Db;

    pub fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_with_clock(&dir.path().join("t.db"), Clock::default()).unwrap();
        (dir, db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_from_a_minute() {
        let max = time::Duration::days(7);
        assert_eq!(bounded_duration(" 2h ", max), Ok(time::Duration::hours(2)));
        assert!(
            bounded_duration("30s", max)
                .unwrap_err()
                .contains("1 minute and 7days")
        );
        assert!(bounded_duration("8d", max).is_err());
        assert!(
            bounded_duration("soon", max)
                .unwrap_err()
                .contains("`soon`")
        );
    }
}
