//! Alerts: a page of them (everyone, on the page and the API), and acknowledging one (noc
//! and admin). Audited.

use serde::{Deserialize, Serialize};

use super::query::{Paging, QueryError};
use super::{Internal, Kind, Refused, bounded_duration};
use crate::clock::to_ms;
use crate::db::Db;
use crate::db::alerts::{Alert, AlertQuery, AlertState, Severity};
use crate::db::audit::Actor;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// Only alerts in this state.
    pub state: Option<AlertState>,
    /// Only alerts of this severity.
    pub severity: Option<Severity>,
    /// Only this rule, e.g. `security.revoked_probe`.
    pub rule: Option<String>,
    /// Only alerts about this site.
    pub site: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A page of alerts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<Alert>,
    pub next_cursor: Option<String>,
}

/// A page of alerts, newest first.
pub async fn read(db: &Db, f: AlertFilter) -> Result<AlertPage, QueryError> {
    let paging = Paging {
        limit: f.limit,
        cursor: f.cursor,
    };
    let limit = paging.limit()?;
    let items = db
        .alerts(AlertQuery {
            state: f.state,
            severity: f.severity,
            site: f.site.filter(|s| !s.is_empty()),
            rule: f.rule.filter(|r| !r.is_empty()),
            before: paging.cursor()?,
            limit,
        })
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(AlertPage { items, next_cursor })
}

/// The longest an acknowledgement holds.
const MAX_ACKNOWLEDGEMENT: time::Duration = time::Duration::days(7);

/// A refused acknowledgement or silence.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<crate::db::DbError> for AlertError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Internal(e.into())
    }
}

impl Refused for AlertError {
    fn kind(&self) -> Kind {
        match self {
            Self::Invalid(_) => Kind::Invalid,
            Self::NotFound(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "bad_alert_request",
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

/// A comment people can read back: trimmed, 1 to 500 characters.
pub fn required_comment(comment: &str) -> Result<String, AlertError> {
    let comment = comment.trim();
    if comment.is_empty() || comment.chars().count() > 500 {
        return Err(AlertError::Invalid(
            "a comment of 1 to 500 characters is required".into(),
        ));
    }
    Ok(comment.to_string())
}

/// Acknowledges open alert `id` for `for_` (`2h`, up to 7 days): it stops firing until then,
/// or until it resolves.
pub async fn acknowledge(
    db: &Db,
    actor: Actor,
    id: i64,
    comment: &str,
    for_: &str,
) -> Result<(), AlertError> {
    let comment = required_comment(comment)?;
    let held = bounded_duration(for_, MAX_ACKNOWLEDGEMENT).map_err(AlertError::Invalid)?;
    let until = db.clock().now() + held;
    if !db
        .acknowledge_alert(actor, id, comment, to_ms(until))
        .await?
    {
        return Err(AlertError::NotFound(format!("no open alert {id}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_say_what_is_wrong_before_touching_anything() {
        let (_dir, db) = super::super::testing::db();
        let cli = Actor::cli;
        let no_comment = acknowledge(&db, cli(), 1, "  ", "2h").await.unwrap_err();
        assert_eq!(
            (no_comment.kind(), no_comment.code()),
            (Kind::Invalid, "bad_alert_request")
        );
        let too_long = acknowledge(&db, cli(), 1, "switch swap", "8d")
            .await
            .unwrap_err();
        assert!(too_long.to_string().contains("`8d`"), "{too_long}");
        let missing = acknowledge(&db, cli(), 42, "switch swap", "2h")
            .await
            .unwrap_err();
        assert_eq!(missing.to_string(), "no open alert 42");
        assert_eq!(missing.kind(), Kind::NotFound);
    }
}
