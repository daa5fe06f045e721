//! What a notification says: one message per site and channel, listing the alerts that
//! started firing or resolved together. Webhooks get it as JSON (documented in the OpenAPI
//! document as `Notification`); Slack and e-mail get the same as text.

use serde::{Deserialize, Serialize};

/// The body of a webhook notification.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// Unique per message and channel, the same on every retry (also the
    /// `X-Seahawks-Delivery` header): a receiver that saw it already can drop the repeat.
    pub id: String,
    /// The site the alerts are about; absent for the nester's own.
    pub site: Option<String>,
    pub firing: u32,
    pub resolved: u32,
    pub alerts: Vec<NotifiedAlert>,
    /// Whether this is a test message (`nester alerts test`).
    pub test: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifiedAlert {
    pub id: i64,
    pub rule: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub subject: String,
    pub summary: String,
    pub site: Option<String>,
    pub probe_id: Option<String>,
    /// RFC 3339.
    pub first_seen: String,
    /// The alerts page for it, when the nester's public address is known.
    pub url: Option<String>,
}

impl Notification {
    /// One line for a subject or a chat message.
    pub fn title(&self) -> String {
        if self.test {
            return "[Seahawks] test message: this channel works".into();
        }
        let mut parts = Vec::new();
        if self.firing > 0 {
            parts.push(format!("{} firing", self.firing));
        }
        if self.resolved > 0 {
            parts.push(format!("{} resolved", self.resolved));
        }
        format!(
            "[Seahawks] {}: {}",
            self.site.as_deref().unwrap_or("nester"),
            parts.join(", ")
        )
    }

    /// The message as text: the title, then one line per alert.
    pub fn text(&self) -> String {
        let mut out = self.title();
        out.push('\n');
        for a in &self.alerts {
            let state = if a.state == "resolved" {
                "RESOLVED".to_string()
            } else {
                a.severity.to_uppercase()
            };
            out.push_str(&format!("\n- {state} {}: {}", a.rule, a.summary));
            if let Some(url) = &a.url {
                out.push_str(&format!(" <{url}>"));
            }
        }
        out
    }
}
