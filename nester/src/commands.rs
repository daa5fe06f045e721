//! One-shot administrative commands: `init`, enrollment tokens, probe revocation.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared::enroll::EnrollmentToken;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::datadir::{DataDir, write_new};
use crate::db::Db;
use crate::pki::Ca;

/// Names every server certificate carries besides the operator's: loopback, and this host.
pub fn default_server_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let host = crate::config::hostname();
    if !host.is_empty() && host != "localhost" {
        names.push(host);
    }
    names
}

/// Refuses a data directory that already holds a CA.
pub fn ensure_uninitialised(dir: &DataDir) -> anyhow::Result<()> {
    if dir.is_initialised() {
        bail!(
            "{} is already initialised; refusing to replace its CA",
            dir.root().display()
        );
    }
    Ok(())
}

/// Creates the data directory, the CA, the server certificates and the database.
pub fn init(dir: &DataDir, extra_names: &[String]) -> anyhow::Result<()> {
    ensure_uninitialised(dir)?;
    dir.create()?;
    let ca = Ca::create(dir)?;
    let mut names = extra_names.to_vec();
    names.extend(default_server_names());
    names.dedup();
    for listener in ["ingest", "web"] {
        let issued = ca.issue_server(&names)?;
        // The chain includes the CA, so a new harvester can check its pin on first contact.
        let chain = format!("{}{}", issued.cert_pem, ca.cert_pem);
        write_new(
            &dir.pki(&format!("{listener}.key")),
            issued.key_pem.as_bytes(),
            0o600,
        )?;
        write_new(
            &dir.pki(&format!("{listener}.pem")),
            chain.as_bytes(),
            0o644,
        )?;
    }
    Db::open(&dir.database())
        .with_context(|| format!("cannot create {}", dir.database().display()))?;
    Ok(())
}

/// A time in the CLI's tables.
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness available"))?;
    Ok(bytes)
}

/// Creates an enrollment token for `site`, usable `uses` times within `ttl`, and returns the
/// string to hand to the harvester. Only the secret's SHA-256 is stored.
pub async fn create_token(
    db: &Db,
    dir: &DataDir,
    ingest: String,
    site: &str,
    ttl: Duration,
    uses: u32,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        !site.trim().is_empty() && site.len() <= shared::report::MAX_LABEL_LEN,
        "--site must be 1 to 128 characters"
    );
    anyhow::ensure!(
        ttl >= Duration::MINUTE && ttl <= Duration::days(30),
        "--ttl must be between 1 minute and 30 days"
    );
    anyhow::ensure!(uses >= 1, "--uses must be at least 1");
    let ca = crate::tls::ca_cert(dir)?;
    let token = EnrollmentToken {
        ingest,
        id: random::<8>()?.iter().map(|b| format!("{b:02x}")).collect(),
        secret: URL_SAFE_NO_PAD.encode(random::<32>()?),
        ca_sha256: shared::identity::fingerprint(&ca),
    };
    db.create_token(
        token.id.clone(),
        &token.secret,
        site.to_string(),
        OffsetDateTime::now_utc() + ttl,
        uses,
    )
    .await?;
    Ok(token.encode())
}

/// `nester token list`, one line per token.
pub async fn list_tokens(db: &Db) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    let mut out = format!(
        "{:<16}  {:<20}  {:<8}  {:<5}  {}\n",
        "TOKEN", "SITE", "STATE", "USES", "EXPIRES"
    );
    for t in db.tokens().await? {
        out.push_str(&format!(
            "{:<16}  {:<20}  {:<8}  {:<5}  {}\n",
            t.token_id,
            t.site,
            t.state(now),
            format!("{}/{}", t.uses, t.max_uses),
            t.expires_at.replace_nanosecond(0).unwrap_or(t.expires_at)
        ));
    }
    Ok(out)
}

pub async fn revoke_token(db: &Db, token_id: &str) -> anyhow::Result<()> {
    if !db.revoke_token(token_id.to_string()).await? {
        bail!("no usable token `{token_id}` (see `nester token list`)");
    }
    Ok(())
}

pub async fn revoke_probe(db: &Db, probe_id: Uuid) -> anyhow::Result<()> {
    if !db.revoke_probe(probe_id).await? {
        bail!("no enrolled, unrevoked probe {probe_id} (see `nester probe list`)");
    }
    Ok(())
}

/// `nester db stats`: every table and index by size, then the file.
pub async fn db_stats(db: &Db) -> anyhow::Result<String> {
    let stats = db.stats().await?;
    let mut out = format!("{:<28}  {:>12}  {:>12}\n", "TABLE / INDEX", "ROWS", "SIZE");
    for t in &stats.tables {
        let rows = t.rows.map_or("(index)".to_string(), |r| r.to_string());
        out.push_str(&format!(
            "{:<28}  {rows:>12}  {:>12}\n",
            t.name,
            human_bytes(t.bytes)
        ));
    }
    out.push_str(&format!(
        "{:<28}  {:>12}  {:>12}\n{:<28}  {:>12}  {:>12}\n",
        "free pages",
        "",
        human_bytes(stats.free_bytes),
        "database file",
        "",
        human_bytes(stats.file_bytes)
    ));
    Ok(out)
}

/// 1536 → "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    let mut value = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{n} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at GiB")
}

/// `nester probe list`, one line per probe.
pub async fn list_probes(db: &Db) -> anyhow::Result<String> {
    let mut out = format!(
        "{:<36}  {:<20}  {:<8}  {:<8}  {}\n",
        "PROBE", "SITE", "STATE", "MISSING", "LAST REPORT"
    );
    for p in db.probes(None, time::OffsetDateTime::now_utc()).await? {
        let state = if p.revoked {
            "revoked"
        } else {
            p.status.as_str()
        };
        let last = p.last_report.map_or("never".to_string(), |r| {
            r.generated_at
                .replace_nanosecond(0)
                .unwrap_or(r.generated_at)
                .to_string()
        });
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<8}  {:<8}  {last}\n",
            p.probe_id, p.site, state, p.missing_reports
        ));
    }
    Ok(out)
}

/// Where a new password comes from: one line of standard input (`--password-stdin`, for
/// scripts), typed twice on a terminal, or generated. The second value says whether it was
/// generated, in which case the caller shows it once.
pub fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    use std::io::{BufRead, IsTerminal};
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_string()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("new password (empty: generate one): ")?;
        if first.is_empty() {
            return Ok((crate::users::generate_password()?, true));
        }
        crate::users::check_password(&first)?;
        let again = rpassword::prompt_password("the same again: ")?;
        if again != first {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        return Ok((crate::users::generate_password()?, true));
    };
    crate::users::check_password(&password)?;
    Ok((password, false))
}

/// The line that shows a generated password, once.
pub fn show_password(username: &str, password: &str, generated: bool) -> String {
    if generated {
        format!(
            "password for {username}: {password}\n(shown once: keep it in a password manager; \
             `nester user reset-password {username}` makes a new one)\n"
        )
    } else {
        format!("password for {username} set\n")
    }
}

fn refused(change: crate::db::UserChange, username: &str) -> anyhow::Result<()> {
    use crate::db::UserChange;
    match change {
        UserChange::Done => Ok(()),
        UserChange::NoSuchUser => bail!("no user `{username}` (see `nester user list`)"),
        UserChange::AlreadyExists => bail!("user `{username}` already exists"),
        UserChange::LastAdmin => bail!(
            "`{username}` is the last enabled admin; make another admin first, or nobody could administer this nester"
        ),
    }
}

/// Adds a user; returns what to print (the generated password, if any, shown once).
pub async fn add_user(
    db: &Db,
    username: &str,
    role: crate::users::Role,
    password: (String, bool),
) -> anyhow::Result<String> {
    crate::users::check_username(username)?;
    let (password, generated) = password;
    let hash = crate::users::hash_password(password.clone()).await?;
    refused(
        db.add_user(username.to_string(), role, hash).await?,
        username,
    )?;
    Ok(format!(
        "user {username} added ({role})\n{}",
        show_password(username, &password, generated)
    ))
}

pub async fn list_users(db: &Db) -> anyhow::Result<String> {
    let mut out = format!(
        "{:<24} {:<8} {:<9} {:<4} {:<20} PASSWORD SET\n",
        "USER", "ROLE", "STATE", "2FA", "CREATED"
    );
    for u in db.list_users().await? {
        let state = if u.disabled { "disabled" } else { "enabled" };
        out.push_str(&format!(
            "{:<24} {:<8} {:<9} {:<4} {:<20} {}\n",
            u.username,
            u.role,
            state,
            if u.mfa { "on" } else { "off" },
            rfc3339(u.created_at),
            rfc3339(u.password_changed_at)
        ));
    }
    Ok(out)
}

pub async fn set_user_disabled(db: &Db, username: &str, disabled: bool) -> anyhow::Result<()> {
    refused(
        db.set_disabled(username.to_string(), disabled).await?,
        username,
    )
}

pub async fn reset_password(
    db: &Db,
    username: &str,
    password: (String, bool),
) -> anyhow::Result<String> {
    let (password, generated) = password;
    let hash = crate::users::hash_password(password.clone()).await?;
    refused(db.set_password(username.to_string(), hash).await?, username)?;
    Ok(show_password(username, &password, generated))
}

pub async fn set_role(db: &Db, username: &str, role: crate::users::Role) -> anyhow::Result<()> {
    refused(db.set_role(username.to_string(), role).await?, username)
}

/// Creates an API token for `user_id` and returns it (`shk_...`); only its SHA-256 is kept.
pub async fn create_api_token(
    db: &Db,
    user_id: i64,
    name: &str,
    scope: crate::db::Scope,
    ttl: Duration,
    now: OffsetDateTime,
) -> anyhow::Result<String> {
    let token = crate::auth::secret::api_token()?;
    db.create_api_token(crate::db::NewApiToken {
        token_hash: crate::auth::secret::sha256(&token),
        user_id,
        name: name.to_string(),
        scope,
        now_ms: crate::db::to_ms(now),
        expires_ms: crate::db::to_ms(now + ttl),
    })
    .await?;
    Ok(token)
}

async fn existing_user(db: &Db, username: &str) -> anyhow::Result<i64> {
    db.user_id(username.to_string())
        .await?
        .with_context(|| format!("no user `{username}` (see `nester user list`)"))
}

/// `nester api-token create`: the token for `username`, printed once.
pub async fn create_user_api_token(
    db: &Db,
    username: &str,
    name: &str,
    scope: crate::db::Scope,
    ttl: Duration,
) -> anyhow::Result<String> {
    let user_id = existing_user(db, username).await?;
    create_api_token(db, user_id, name, scope, ttl, OffsetDateTime::now_utc()).await
}

pub async fn list_api_tokens(db: &Db, username: Option<&str>) -> anyhow::Result<String> {
    let user_id = match username {
        Some(u) => Some(existing_user(db, u).await?),
        None => None,
    };
    let mut out = format!(
        "{:<6} {:<20} {:<20} {:<10} {:<8} {:<22} LAST USED\n",
        "ID", "USER", "NAME", "SCOPE", "STATE", "EXPIRES"
    );
    let now = OffsetDateTime::now_utc();
    for t in db.api_tokens(user_id).await? {
        let state = match (t.revoked, t.expires_at <= now) {
            (true, _) => "revoked",
            (false, true) => "expired",
            (false, false) => "active",
        };
        out.push_str(&format!(
            "{:<6} {:<20} {:<20} {:<10} {:<8} {:<22} {}\n",
            t.token_id,
            t.username,
            t.name,
            t.scope.as_str(),
            state,
            rfc3339(t.expires_at),
            t.last_used_at.map_or_else(|| "never".to_string(), rfc3339)
        ));
    }
    Ok(out)
}

pub async fn revoke_api_token(db: &Db, token_id: i64) -> anyhow::Result<()> {
    if !db
        .revoke_api_token(token_id, None, crate::db::to_ms(OffsetDateTime::now_utc()))
        .await?
    {
        bail!("no API token {token_id} (see `nester api-token list`)");
    }
    Ok(())
}

/// Turns a user's TOTP off (lost authenticator and recovery codes) and ends their sessions;
/// an admin sets it up again at the next sign-in.
pub async fn reset_mfa(db: &Db, username: &str) -> anyhow::Result<()> {
    refused(db.reset_totp(username.to_string()).await?, username)
}
