//! The users page: the same user management as `nester user`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::Caller;
use crate::auth::credentials;
use crate::clock::rfc3339;
use crate::db::Role;
use crate::error::{ApiError, ApiForm, ApiPath};
use crate::ops::users;
use crate::ops::{Kind, Refused};
use crate::state::AppState;
use crate::web::view::{self, Nav, Notice};

const ROLES: [&str; 3] = ["admin", "noc", "support"];

struct UserView {
    username: String,
    /// Every role, and whether it is this user's.
    roles: Vec<(&'static str, bool)>,
    mfa: bool,
    created: String,
    password_changed: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<UserView>,
    roles: [&'static str; 3],
    error: Option<String>,
}

async fn users_page(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let users = state
        .db
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserView {
            roles: ROLES.iter().map(|r| (*r, *r == u.role.as_str())).collect(),
            mfa: u.mfa,
            created: rfc3339(u.created_at),
            password_changed: rfc3339(u.password_changed_at),
            disabled: u.disabled,
            username: u.username,
        })
        .collect();
    view::render(
        status,
        &UsersPage {
            nav: Nav::of(caller),
            csrf: caller.csrf().to_string(),
            users,
            roles: ROLES,
            error,
        },
    )
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    users_page(&state, &caller, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

/// A generated password, shown once to the admin who made or reset it.
fn show_password(
    caller: &Caller,
    title: &str,
    username: &str,
    password: String,
) -> Result<Response, ApiError> {
    view::ok(&Notice {
        nav: Nav::of(caller),
        title: title.into(),
        message: format!("The password of {username}:"),
        secrets: vec![password],
        next: "/admin/users".into(),
    })
}

pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiForm(form): ApiForm<AddForm>,
) -> Result<Response, ApiError> {
    let refuse = |e: String| users_page(&state, &caller, StatusCode::BAD_REQUEST, Some(e));
    let username = form.username.trim().to_string();
    let role: Role = match form.role.parse() {
        Ok(r) => r,
        Err(e) => return refuse(e).await,
    };
    let password = credentials::generate_password().map_err(ApiError::internal)?;
    match users::add(&state.db, caller.actor(), &username, role, &password).await {
        Ok(()) => show_password(&caller, "User added", &username, password),
        Err(e) if e.kind() == Kind::Invalid => refuse(e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    action: String,
    role: Option<String>,
}

pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
    ApiForm(form): ApiForm<ChangeForm>,
) -> Result<Response, ApiError> {
    let refuse = |e: String| users_page(&state, &caller, StatusCode::BAD_REQUEST, Some(e));
    let (db, actor, name) = (&state.db, caller.actor(), username.as_str());
    let mut password = None;
    let outcome = match form.action.as_str() {
        "disable" => users::set_disabled(db, actor, name, true).await,
        "enable" => users::set_disabled(db, actor, name, false).await,
        "set-role" => match form.role.as_deref().unwrap_or("").parse() {
            Ok(role) => users::set_role(db, actor, name, role).await,
            Err(e) => return refuse(e).await,
        },
        "reset-password" => {
            let new = credentials::generate_password().map_err(ApiError::internal)?;
            let done = users::set_password(db, actor, name, &new).await;
            password = Some(new);
            done
        }
        other => return refuse(format!("Unknown action `{other}`.")).await,
    };
    match outcome {
        Ok(()) => {
            tracing::info!(admin = %caller.username, username = %username, action = %form.action, "user changed");
            match password {
                Some(p) => show_password(&caller, "Password reset", &username, p),
                None => Ok(Redirect::to("/admin/users").into_response()),
            }
        }
        Err(e) if e.kind() == Kind::Invalid => refuse(e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}
