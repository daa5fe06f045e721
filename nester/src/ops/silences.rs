//! Silences: alerts matching one are raised and shown but notify nobody until it expires or
//! is lifted (noc and admin make and lift them). Audited.

use serde::Deserialize;

use super::alerts::{AlertError, required_comment};
use super::bounded_duration;
use crate::clock::to_ms;
use crate::db::Db;
use crate::db::audit::Actor;
use crate::db::silences::Matcher;

/// The longest a silence holds.
const MAX_SILENCE: time::Duration = time::Duration::days(30);

/// A silence to make: at least one of `rule`, `site`, `subject`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub rule: Option<String>,
    pub site: Option<String>,
    pub subject: Option<String>,
    /// Why (1 to 500 characters).
    pub comment: String,
    /// How long, e.g. `2h`, `1d` (1 minute to 30 days).
    #[serde(rename = "for")]
    pub for_: String,
}

/// Makes a silence; its id.
pub async fn make(db: &Db, actor: Actor, new: NewSilence) -> Result<i64, AlertError> {
    let field = |v: Option<String>| -> Result<Option<String>, AlertError> {
        match v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > 200 => Err(AlertError::Invalid(
                "a matcher is at most 200 characters".into(),
            )),
            other => Ok(other),
        }
    };
    let matcher = Matcher {
        rule: field(new.rule)?,
        site: field(new.site)?,
        subject: field(new.subject)?,
    };
    if matcher.is_empty() {
        return Err(AlertError::Invalid(
            "say what to silence: a rule, a site or a subject (or several)".into(),
        ));
    }
    let comment = required_comment(&new.comment)?;
    let held = bounded_duration(&new.for_, MAX_SILENCE).map_err(AlertError::Invalid)?;
    let until = db.clock().now() + held;
    Ok(db
        .add_silence(actor, matcher, comment, to_ms(until))
        .await?)
}

/// Lifts silence `id` before its time.
pub async fn lift(db: &Db, actor: Actor, id: i64) -> Result<(), AlertError> {
    if !db.lift_silence(actor, id).await? {
        return Err(AlertError::NotFound(format!("no silence {id} in force")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Kind, Refused};

    #[tokio::test]
    async fn a_silence_needs_a_matcher_and_a_comment_and_is_lifted_once() {
        let (_dir, db) = super::super::testing::db();
        let cli = Actor::cli;
        let nothing = NewSilence {
            comment: "stadium works".into(),
            for_: "2h".into(),
            ..Default::default()
        };
        let err = make(&db, cli(), nothing).await.unwrap_err();
        assert!(err.to_string().contains("say what to silence"), "{err}");
        let long = NewSilence {
            site: Some("x".repeat(201)),
            comment: "c".into(),
            for_: "2h".into(),
            ..Default::default()
        };
        assert_eq!(
            make(&db, cli(), long).await.unwrap_err().kind(),
            Kind::Invalid
        );
        let good = NewSilence {
            site: Some(" kc-01 ".into()),
            comment: "stadium works".into(),
            for_: "2h".into(),
            ..Default::default()
        };
        let id = make(&db, cli(), good).await.unwrap();
        let active = db.active_silences().await.unwrap();
        assert_eq!(active.len(), 1);
        lift(&db, cli(), id).await.unwrap();
        let again = lift(&db, cli(), id).await.unwrap_err();
        assert_eq!(again.to_string(), format!("no silence {id} in force"));
        assert!(db.active_silences().await.unwrap().is_empty());
    }
}
