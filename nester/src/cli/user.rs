//! `nester user`: the people who use the dashboard and the API. Passwords are typed twice on
//! a terminal, read from standard input with `--password-stdin`, or generated and shown once.
//! None is ever taken from the command line.

use anyhow::bail;

use crate::auth::credentials;
use crate::clock::rfc3339;
use crate::db::audit::Actor;
use crate::db::{Db, Role};
use crate::ops::users::{self, UserError};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a user with a role: admin, noc or support.
    Add {
        username: String,
        #[arg(long)]
        role: Role,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, their roles and state.
    List,
    /// Disable a user: no more logins.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Give a user a new password.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role.
    SetRole { username: String, role: Role },
    /// Turn off a user's two-factor authentication (lost authenticator and recovery codes);
    /// ends their sessions. Admins must set it up again at their next sign-in.
    ResetMfa { username: String },
}

pub async fn run(command: Command, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::Add {
            username,
            role,
            password_stdin,
        } => {
            let password = new_password(password_stdin)?;
            print!("{}", add_user(db, &username, role, password).await?);
        }
        Command::List => print!("{}", list_users(db).await?),
        Command::Disable { username } => {
            set_user_disabled(db, &username, true).await?;
            println!("user {username} disabled");
        }
        Command::Enable { username } => {
            set_user_disabled(db, &username, false).await?;
            println!("user {username} enabled");
        }
        Command::ResetPassword {
            username,
            password_stdin,
        } => {
            let password = new_password(password_stdin)?;
            print!("{}", reset_password(db, &username, password).await?);
        }
        Command::SetRole { username, role } => {
            cli_error(users::set_role(db, Actor::cli(), &username, role).await)?;
            println!("user {username} is now {role}");
        }
        Command::ResetMfa { username } => {
            cli_error(users::reset_mfa(db, Actor::cli(), &username).await)?;
            println!("two-factor authentication of {username} turned off; sessions ended");
        }
    }
    Ok(())
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
            return Ok((credentials::generate_password()?, true));
        }
        credentials::check_password(&first)?;
        let again = rpassword::prompt_password("the same again: ")?;
        if again != first {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        return Ok((credentials::generate_password()?, true));
    };
    credentials::check_password(&password)?;
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

/// An operation's refusal in the words of the command line.
fn cli_error(result: Result<(), UserError>) -> anyhow::Result<()> {
    result.map_err(|e| match e {
        UserError::NoSuchUser(_) => anyhow::anyhow!("{e} (see `nester user list`)"),
        other => other.into(),
    })
}

/// Adds a user; returns what to print (the generated password, if any, shown once).
pub async fn add_user(
    db: &Db,
    username: &str,
    role: Role,
    password: (String, bool),
) -> anyhow::Result<String> {
    let (password, generated) = password;
    cli_error(users::add(db, Actor::cli(), username, role, &password).await)?;
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
    cli_error(users::set_disabled(db, Actor::cli(), username, disabled).await)
}

pub async fn reset_password(
    db: &Db,
    username: &str,
    password: (String, bool),
) -> anyhow::Result<String> {
    let (password, generated) = password;
    cli_error(users::set_password(db, Actor::cli(), username, &password).await)?;
    Ok(show_password(username, &password, generated))
}
