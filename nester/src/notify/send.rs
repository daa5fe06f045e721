//! Delivering one message to one channel: a generic webhook (the JSON body, signed), a
//! Slack- or Mattermost-compatible webhook (`{"text": ...}`), or e-mail over SMTP with
//! STARTTLS or TLS. Secrets are read from their files when the channel is made.

use std::time::Duration;

use anyhow::Context;
use aws_lc_rs::hmac;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Channel, ChannelKind, SmtpTls};

use super::message::Notification;

/// Header names of a webhook delivery.
pub const DELIVERY: &str = "x-seahawks-delivery";
pub const TIMESTAMP: &str = "x-seahawks-timestamp";
pub const SIGNATURE: &str = "x-seahawks-signature";
const TIMEOUT: Duration = Duration::from_secs(15);

pub enum Sender {
    Webhook {
        client: reqwest::Client,
        url: String,
        key: Box<hmac::Key>,
    },
    Slack {
        client: reqwest::Client,
        url: String,
    },
    Email {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
}

fn read_secret(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} from {}", path.display()))?;
    let text = text.trim().to_string();
    anyhow::ensure!(
        !text.is_empty(),
        "the {what} in {} is empty",
        path.display()
    );
    Ok(text)
}

fn client(channel: &Channel) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("seahawks-nester/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &channel.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} holds no PEM certificate", ca.display()))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().context("cannot make the HTTP client")
}

impl Sender {
    /// The sender for `channel` (its secrets read now: a missing file is an error at start).
    pub fn new(channel: &Channel) -> anyhow::Result<Self> {
        let field = |v: &Option<String>, what: &str| {
            v.clone()
                .with_context(|| format!("the channel has no `{what}`"))
        };
        Ok(match channel.kind {
            ChannelKind::Webhook => {
                let secret_file = channel.secret_file.as_deref().context("no `secret_file`")?;
                let secret = read_secret(secret_file, "webhook secret")?;
                Self::Webhook {
                    client: client(channel)?,
                    url: field(&channel.url, "url")?,
                    key: Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())),
                }
            }
            ChannelKind::Slack => Self::Slack {
                client: client(channel)?,
                url: field(&channel.url, "url")?,
            },
            ChannelKind::Email => {
                let server = field(&channel.server, "server")?;
                let mut tls = TlsParameters::builder(server.clone());
                if let Some(ca) = &channel.ca_file {
                    let pem = std::fs::read(ca)
                        .with_context(|| format!("cannot read {}", ca.display()))?;
                    tls = tls
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(
                            Certificate::from_pem(&pem).context("not a PEM certificate")?,
                        );
                }
                let tls = tls.build_rustls().context("cannot set up TLS for SMTP")?;
                let mode = channel.tls.unwrap_or(SmtpTls::Starttls);
                let (wrapped, default_port) = match mode {
                    SmtpTls::Starttls => (Tls::Required(tls), 587),
                    SmtpTls::Tls => (Tls::Wrapper(tls), 465),
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
                    .port(channel.port.unwrap_or(default_port))
                    .tls(wrapped)
                    .timeout(Some(TIMEOUT));
                if let Some(user) = &channel.username {
                    let file = channel
                        .password_file
                        .as_deref()
                        .context("no `password_file`")?;
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        read_secret(file, "SMTP password")?,
                    ));
                }
                let mailbox = |a: &str| {
                    a.parse::<Mailbox>()
                        .with_context(|| format!("`{a}` is not an e-mail address"))
                };
                Self::Email {
                    transport: Box::new(builder.build()),
                    from: mailbox(&field(&channel.from, "from")?)?,
                    to: channel
                        .to
                        .iter()
                        .map(|a| mailbox(a))
                        .collect::<anyhow::Result<_>>()?,
                }
            }
        })
    }

    /// Delivers `message`; `Err` says why not, for the outbox and the log.
    pub async fn send(&self, message: &Notification, now_s: i64) -> Result<(), String> {
        match self {
            Self::Webhook { client, url, key } => {
                let body = serde_json::to_string(message).map_err(|e| e.to_string())?;
                let timestamp = now_s.to_string();
                let signature = sign(key, &timestamp, &body);
                let response = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(DELIVERY, &message.id)
                    .header(TIMESTAMP, &timestamp)
                    .header(SIGNATURE, signature)
                    .body(body)
                    .send()
                    .await;
                answered(response)
            }
            Self::Slack { client, url } => {
                let body = serde_json::json!({"text": message.text()}).to_string();
                let response = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                answered(response)
            }
            Self::Email {
                transport,
                from,
                to,
            } => {
                let mut builder = lettre::Message::builder()
                    .from(from.clone())
                    .subject(message.title())
                    .message_id(Some(format!(
                        "<{}@seahawks>",
                        message.id.replace(['/', ' '], ".")
                    )));
                for address in to {
                    builder = builder.to(address.clone());
                }
                let mail = builder
                    .body(message.text())
                    .map_err(|e| format!("cannot build the e-mail: {e}"))?;
                transport
                    .send(mail)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("SMTP: {e}"))
            }
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body`: what a receiver recomputes with the
/// shared secret to know the message is ours and fresh.
pub fn sign(key: &hmac::Key, timestamp: &str, body: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn answered(response: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    match response {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("the receiver answered {}", r.status())),
        Err(e) => Err(format!("cannot reach the receiver: {}", chain(&e))),
    }
}

/// An error with its causes, as `a: b: c` (reqwest's own text leaves out why).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        let a = sign(&key, "1700000000", "{}");
        // The same as any HMAC-SHA256 implementation computes (Python's hmac module here).
        assert_eq!(
            a,
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(a, sign(&key, "1700000001", "{}"));
        assert_ne!(a, sign(&key, "1700000000", "{ }"));
    }
}
