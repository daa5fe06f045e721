//! Silences: alerts matching a silence are still raised and shown, but nobody is notified of
//! them until it expires or is lifted. Creating, lifting and expiry are audited.

use rusqlite::params;
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{Actor, Change};
use super::{Db, DbError, millis};

/// What a silence matches: every field given (none given is refused by the callers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Matcher {
    /// A rule, e.g. `probe.offline`.
    pub rule: Option<String>,
    pub site: Option<String>,
    /// A subject, e.g. `probe:0b9c…` or `host:10.0.0.5`.
    pub subject: Option<String>,
}

impl Matcher {
    pub fn is_empty(&self) -> bool {
        self.rule.is_none() && self.site.is_none() && self.subject.is_none()
    }

    pub fn matches(&self, rule: &str, site: Option<&str>, subject: &str) -> bool {
        self.rule.as_deref().is_none_or(|r| r == rule)
            && self.site.as_deref().is_none_or(|s| Some(s) == site)
            && self.subject.as_deref().is_none_or(|s| s == subject)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Silence {
    pub id: i64,
    #[serde(flatten)]
    pub matcher: Matcher,
    pub comment: String,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Db {
    /// Adds a silence until `expires_ms`; its id. Audited.
    pub async fn add_silence(
        &self,
        actor: Actor,
        matcher: Matcher,
        comment: String,
        expires_ms: i64,
    ) -> Result<i64, DbError> {
        let now = self.clock.now_ms();
        let by = actor.name.clone();
        self.audited(actor, move |tx| {
            tx.execute(
                "INSERT INTO silences (rule, site, subject, comment, created_by, created_ms,
                   expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    matcher.rule,
                    matcher.site,
                    matcher.subject,
                    comment,
                    by,
                    now,
                    expires_ms
                ],
            )?;
            let id = tx.last_insert_rowid();
            let change = Change::new("silence.add", format!("silence:{id}"))
                .with("rule", &matcher.rule)
                .with("site", &matcher.site)
                .with("subject", &matcher.subject)
                .with("comment", &comment)
                .with("expires_ms", expires_ms);
            Ok((id, Some(change)))
        })
        .await
    }

    /// Lifts silence `id` before its expiry; `false` when it is not in force. Audited.
    pub async fn lift_silence(&self, actor: Actor, id: i64) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |tx| {
            let done = tx.execute(
                "UPDATE silences SET ended_ms = ?2
                 WHERE id = ?1 AND ended_ms IS NULL AND expires_ms > ?2",
                params![id, now],
            )? == 1;
            Ok((
                done,
                done.then(|| Change::new("silence.remove", format!("silence:{id}"))),
            ))
        })
        .await
    }

    /// Silences in force now, newest first.
    pub async fn active_silences(&self) -> Result<Vec<Silence>, DbError> {
        let now = self.clock.now_ms();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, rule, site, subject, comment, created_by, created_ms, expires_ms
                 FROM silences WHERE ended_ms IS NULL AND expires_ms > ?1 ORDER BY id DESC",
            )?;
            let rows = stmt.query_map([now], |r| {
                Ok(Silence {
                    id: r.get(0)?,
                    matcher: Matcher {
                        rule: r.get(1)?,
                        site: r.get(2)?,
                        subject: r.get(3)?,
                    },
                    comment: r.get(4)?,
                    created_by: r.get(5)?,
                    created_at: millis(r, 6)?,
                    expires_at: millis(r, 7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Notes the silences whose time is up as ended, each audited; how many.
    pub async fn end_expired_silences(&self) -> Result<usize, DbError> {
        let now = self.clock.now_ms();
        // Asked every evaluation: a read, and a write only when something ended.
        let due: i64 = self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT count(*) FROM silences WHERE ended_ms IS NULL AND expires_ms <= ?1",
                    )?
                    .query_row([now], |r| r.get(0))?)
            })
            .await?;
        if due == 0 {
            return Ok(0);
        }
        self.audited(Actor::server(), move |tx| {
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM silences WHERE ended_ms IS NULL AND expires_ms <= ?1")?
                .query_map([now], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok((0, None));
            }
            tx.execute(
                "UPDATE silences SET ended_ms = expires_ms
                 WHERE ended_ms IS NULL AND expires_ms <= ?1",
                [now],
            )?;
            let change = Change::new("silence.expire", "silences").with("ids", &ids);
            Ok((ids.len(), Some(change)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matcher_needs_every_field_it_names() {
        let m = Matcher {
            rule: Some("probe.offline".into()),
            site: Some("kc".into()),
            subject: None,
        };
        assert!(m.matches("probe.offline", Some("kc"), "probe:a"));
        assert!(!m.matches("probe.offline", Some("stl"), "probe:a"));
        assert!(!m.matches("probe.offline", None, "probe:a"));
        assert!(!m.matches("host.new", Some("kc"), "host:x"));
        assert!(Matcher::default().is_empty());
    }
}
