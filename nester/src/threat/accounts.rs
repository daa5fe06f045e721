//! Attacks on an account that no single address makes obvious: a slow guesser (one attempt
//! every ten minutes for a day stays under every per-address threshold) and a distributed one
//! (many addresses, a couple of attempts each). Either raises an alert on the account, in the
//! audit log (`alert.account_attack`), at most once an hour; nobody is banned for it, since
//! the addresses may be anyone's.

use crate::db::audit::{Actor, Change};
use crate::db::{Db, DbError};

/// Failed sign-ins of one account within a day that make a slow attack.
pub const SLOW_FAILURES: u32 = 20;
/// Distinct addresses failing on one account within an hour that make a distributed attack.
pub const DISTRIBUTED_IPS: u32 = 10;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// After a failed sign-in on `username`: raises the alert when the account is under attack
/// and was not alerted on within the hour. Returns the kind raised, if any.
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
    let target = format!("user:{username}");
    let last = db
        .last_recorded("alert.account_attack", target.clone())
        .await?;
    if last.is_some_and(|at| at > now - HOUR_MS) {
        return Ok(None);
    }
    tracing::warn!(
        username,
        kind,
        day_failures,
        hour_ips,
        "account under attack"
    );
    let alert = Change::new("alert.account_attack", target)
        .with("kind", kind)
        .with("failures_24h", day_failures)
        .with("failures_1h", hour_failures)
        .with("addresses_1h", hour_ips);
    db.audit(Actor::server(), alert).await?;
    Ok(Some(kind))
}
