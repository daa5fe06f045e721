//! Threat detection and bans. Rules count what the event stream reports per client prefix
//! over a sliding window (sign-in failures, TLS handshake failures, floods of 404s or
//! 401/403s); an address over a threshold is banned, for twice as long at each repeat
//! offence (up to a cap), remembered in the database across restarts. The accept loop asks
//! [`Threats::banned`] before any TLS byte: a banned client's connection is closed at once.
//! Addresses in the allow-list are never banned, not even by hand. Events that are security
//! incidents of their own (a revoked probe's key in use, a bad report signature, a bad
//! enrollment token) and every ban raise an alert (`alerting.rs`), from any address.

pub mod accounts;
mod alerting;
mod detect;
mod flood;
mod prefix;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;

pub use crate::config::ThreatConfig;
use crate::db::Db;
use crate::db::alerts::{Raise, Severity};
use crate::db::audit::Actor;
pub use detect::Rule;
pub use prefix::prefix_of;

/// The ban list in force (prefix → end, Unix ms; `i64::MAX` for until lifted) and the rules.
pub struct Threats {
    config: ThreatConfig,
    db: Db,
    bans: RwLock<HashMap<IpNet, i64>>,
    detector: detect::Detector,
    alerts: alerting::Pending,
    floods: flood::Floods,
}

/// One event of the stream, as detection sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub ip: IpAddr,
    /// Why a connection was refused before HTTP.
    pub refused: Option<&'a str>,
    pub method: &'a str,
    /// The matched route's pattern.
    pub route: &'a str,
    pub status: u16,
    /// The refusal code of an error response (`probe_revoked`...).
    pub code: Option<&'a str>,
    /// `user:NAME` or `probe:ID`.
    pub who: Option<&'a str>,
}

impl Threats {
    pub fn new(config: ThreatConfig, db: Db) -> Arc<Self> {
        Arc::new(Self {
            floods: flood::Floods::new(config.kernel_after),
            detector: detect::Detector::new(&config),
            config,
            db,
            bans: RwLock::default(),
            alerts: alerting::Pending::default(),
        })
    }

    /// Whether `ip` is never banned: allow-listed, or a trusted proxy (whose clients are).
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let c = &self.config;
        c.allow
            .iter()
            .chain(&c.trusted_proxies)
            .any(|n| n.contains(&ip))
    }

    /// The prefix `ip` is banned by (its /32, or its IPv6 network).
    pub fn prefix(&self, ip: IpAddr) -> IpNet {
        prefix_of(ip, self.config.ipv6_prefix)
    }

    /// Whether a connection from `ip` is refused: the accept loop's question, so cheap.
    pub fn banned(&self, ip: IpAddr) -> bool {
        let Ok(bans) = self.bans.read() else {
            return false;
        };
        if bans.is_empty() {
            return false;
        }
        bans.get(&self.prefix(ip))
            .is_some_and(|until| *until > self.db.clock().now_ms())
    }

    /// Reads the bans in force from the database (at start, and to see `nester ban` made
    /// elsewhere).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let now = self.db.clock().now_ms();
        let mut fresh = HashMap::new();
        for ban in self.db.active_bans().await? {
            if let Ok(net) = ban.prefix.parse::<IpNet>() {
                let until = ban.expires_at.map_or(i64::MAX, crate::clock::to_ms);
                if until > now {
                    fresh.insert(net, until);
                }
            }
        }
        if let Ok(mut bans) = self.bans.write() {
            *bans = fresh;
        }
        self.sync_floods();
        Ok(())
    }

    /// The banned prefixes the kernel drops (`net::kernel_filter`), now and as they change.
    pub fn kernel_bans(&self) -> tokio::sync::watch::Receiver<Arc<[IpNet]>> {
        self.floods.subscribe()
    }

    /// How many banned prefixes the kernel drops now.
    pub fn kernel_banned(&self) -> usize {
        self.floods.len()
    }

    /// Drops from the kernel's set the prefixes no longer banned.
    fn sync_floods(&self) {
        let Ok(bans) = self.bans.read() else { return };
        self.floods
            .retain(self.db.clock().now_ms(), |p| bans.get(p).copied());
    }

    /// An event from the stream (a request's answer, or a connection refused before HTTP):
    /// counted, an alert noted when it is one, and a ban when a rule's threshold is crossed.
    pub fn observe(self: &Arc<Self>, event: &Event<'_>) {
        if event.refused == Some("banned") {
            self.refused_banned(event.ip);
            return;
        }
        let Some(rule) = Rule::of(event) else {
            return;
        };
        let prefix = self.prefix(event.ip);
        if let Some(alert) = rule.alert(event, prefix) {
            self.alerts.add(alert);
        }
        if self.allowed(event.ip) {
            return;
        }
        let now = self.db.clock().now_ms();
        if let Some(count) = self.detector.hit(rule, prefix, now) {
            let reason = format!(
                "{count} {} within {}",
                rule.what(),
                humantime::format_duration(self.config.window)
            );
            // Refused from now on; the database learns it (and how long) just after.
            self.set(prefix, now + ms(self.config.ban));
            let this = self.clone();
            tokio::spawn(async move {
                match this
                    .ban(Actor::server(), prefix, rule.name(), reason.clone(), None)
                    .await
                {
                    Ok(until) => this.alerts.add(Raise {
                        rule: "security.ban",
                        subject: format!("prefix:{prefix}"),
                        severity: Severity::Warning,
                        summary: format!("{prefix} banned: {reason}"),
                        details: serde_json::json!({
                            "rule": rule.name(),
                            "reason": reason,
                            "until_ms": until,
                        }),
                        count: 1,
                        site: None,
                        probe_id: None,
                    }),
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), %prefix, "cannot record a ban");
                    }
                }
            });
        }
    }

    /// A banned client's connection was refused: a flood of them goes to the kernel.
    fn refused_banned(&self, ip: IpAddr) {
        let prefix = self.prefix(ip);
        let until = self.bans.read().ok().and_then(|b| b.get(&prefix).copied());
        if let Some(until) = until
            && self.floods.refused(prefix, self.db.clock().now_ms(), until)
        {
            tracing::warn!(%prefix, "banned prefix flooding: the kernel drops its connections until the ban ends");
        }
    }

    /// Writes the alerts noted since the last call; run every couple of seconds.
    pub async fn flush_alerts(&self) -> anyhow::Result<()> {
        for raise in self.alerts.take() {
            let (rule, subject) = (raise.rule, raise.subject.clone());
            let (_, count) = self.db.raise_alert(raise).await?;
            tracing::warn!(rule, subject, count, "security alert");
        }
        Ok(())
    }

    /// Resolves security alerts that nothing raised again for `[threats] alert_quiet`.
    pub async fn resolve_quiet_alerts(&self) -> anyhow::Result<usize> {
        Ok(self
            .db
            .resolve_quiet_alerts("security.", ms(self.config.alert_quiet))
            .await?)
    }

    /// Bans `prefix`: for `duration`, or by the escalation rule when `None` (the first ban,
    /// doubled at each repeat offence, capped). Refused for an allow-listed prefix.
    pub async fn ban(
        &self,
        actor: Actor,
        prefix: IpNet,
        rule: &'static str,
        reason: String,
        duration: Option<Duration>,
    ) -> anyhow::Result<i64> {
        anyhow::ensure!(
            !self.allowed(prefix.addr()),
            "{prefix} is in the allow-list ([threats] allow) or a trusted proxy: it is never banned"
        );
        let offences = self.db.offences(prefix.to_string()).await?;
        let length = duration.unwrap_or_else(|| {
            let factor = 2u32.saturating_pow(offences.min(20));
            self.config
                .ban
                .saturating_mul(factor)
                .min(self.config.ban_max)
        });
        let until = self.db.clock().now_ms() + ms(length);
        self.db
            .ban(actor, prefix.to_string(), rule, reason, Some(until))
            .await?;
        self.set(prefix, until);
        tracing::warn!(%prefix, rule, until_ms = until, "banned");
        Ok(until)
    }

    pub async fn unban(&self, actor: Actor, prefix: IpNet) -> anyhow::Result<bool> {
        let lifted = self.db.unban(actor, prefix.to_string()).await?;
        if let Ok(mut bans) = self.bans.write() {
            bans.remove(&prefix);
        }
        self.sync_floods();
        Ok(lifted)
    }

    fn set(&self, prefix: IpNet, until: i64) {
        if let Ok(mut bans) = self.bans.write() {
            bans.insert(prefix, until);
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
