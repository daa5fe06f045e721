//! Attacks on an account that no single address makes obvious: a slow guesser (one attempt
//! every ten minutes for a day stays under every per-address threshold) and a distributed one
//! (many addresses, a couple of attempts each). Either raises an alert on the account
//! (`security.account_attack`: one alert, its count rising while the attack goes on); nobody
//! is banned for it, since the addresses may be anyone's.

use crate::db::alerts::{Raise, Severity};
use crate::db::{Db, DbError};

/// Failed sign-ins of one account within a day that make a slow attack.
pub const SLOW_FAILURES: u32 = 20;
/// Distinct addresses failing on one account within an hour that make a distributed attack.
pub const DISTRIBUTED_IPS: u32 = 10;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// After a failed sign-in on `username`: raises (or counts on) the alert when the account is
/// under attack. Returns the kind raised, if any.
pub async fn after_failed_sign_in(
    db: &Db,
    username: &str,
) -> Result<Option<&'static str>, DbError> {
    let now = db.clock().now_ms();
    let (hour_failures, hour_ips) = db.account_failures(username.into(), now - HOUR_MS).await?;
    let (day_failures, _) = db.account_failures(username.into(), now - DAY_MS).await?;
    let kind = if hour_ips >= DISTRIBUTED_IPS {
        "distributed"
    } else if day_failures >= SLOW_FAILURES {
        "slow"
    } else {
        return Ok(None);
    };
    tracing::warn!(
        username,
        kind,
        day_failures,
        hour_ips,
        "account under attack"
    );
    db.raise_alert(Raise {
        rule: "security.account_attack",
        subject: format!("user:{username}"),
        severity: Severity::Critical,
        summary: format!(
            "{kind} password guessing on {username}: {day_failures} failures in 24 h, \
             from {hour_ips} addresses in the last hour"
        ),
        details: serde_json::json!({
            "kind": kind,
            "failures_24h": day_failures,
            "failures_1h": hour_failures,
            "addresses_1h": hour_ips,
        }),
        count: 1,
        site: None,
        probe_id: None,
    })
    .await?;
    Ok(Some(kind))
}
