//! The alerts page: the same read as `GET /api/v1/alerts`, filtered by state, severity and
//! site, newest first, paged; acknowledging (noc, admin) from it; the silences in force,
//! making and lifting them.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{Caller, NOC};
use crate::clock::rfc3339;
use crate::db::alerts::{AlertState, Severity};
use crate::error::{ApiError, ApiForm, ApiPath, ApiQuery};
use crate::ops::alerts::{AlertFilter, acknowledge as acknowledge_alert, read};
use crate::ops::query::{QueryError, bad_query};
use crate::ops::silences::{self, NewSilence};
use crate::state::AppState;
use crate::web::view::{self, Nav};

/// The form's fields, where "any" is an empty value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    #[serde(default)]
    state: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    site: String,
    cursor: Option<String>,
}

struct Row {
    id: i64,
    severity: &'static str,
    state: &'static str,
    rule: String,
    subject: String,
    site: String,
    summary: String,
    first_seen: String,
    last_seen: String,
    count: u32,
    /// "by NAME until TIME: comment", when acknowledged.
    acknowledged: Option<String>,
}

struct SilenceRow {
    id: i64,
    matches: String,
    comment: String,
    by: String,
    until: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    nav: Option<Nav>,
    csrf: String,
    /// Whether the caller may acknowledge and silence.
    acts: bool,
    rows: Vec<Row>,
    silences: Vec<SilenceRow>,
    state: String,
    severity: String,
    site: String,
    next: Option<String>,
    error: Option<String>,
}

pub async fn page(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(form): ApiQuery<Form>,
) -> Result<Response, ApiError> {
    render(&app, &caller, form, None).await
}

/// The page for `form`, with `problem` (a refused action) shown on top.
async fn render(
    app: &AppState,
    caller: &Caller,
    form: Form,
    problem: Option<ApiError>,
) -> Result<Response, ApiError> {
    let (mut status, rows, next, mut error) = match list(app, &form).await {
        Ok((rows, next)) => (StatusCode::OK, rows, next, None),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            (e.status, Vec::new(), None, Some(e.message))
        }
        Err(e) => return Err(e),
    };
    if let Some(p) = problem {
        status = p.status;
        error = Some(p.message);
    }
    let silences = app
        .db
        .active_silences()
        .await?
        .into_iter()
        .map(|s| SilenceRow {
            id: s.id,
            matches: [
                ("rule", &s.matcher.rule),
                ("site", &s.matcher.site),
                ("subject", &s.matcher.subject),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {v}")))
            .collect::<Vec<_>>()
            .join(", "),
            comment: s.comment,
            by: s.created_by,
            until: rfc3339(s.expires_at),
        })
        .collect();
    view::render(
        status,
        &AlertsPage {
            nav: Nav::of(caller),
            csrf: caller.csrf().to_string(),
            acts: NOC.contains(&caller.role),
            rows,
            silences,
            state: form.state,
            severity: form.severity,
            site: form.site,
            next,
            error,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct AckForm {
    #[serde(default)]
    comment: String,
    #[serde(default, rename = "for")]
    for_: String,
}

/// Acknowledges from the page, then back to it (with what went wrong, if anything).
pub async fn acknowledge(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiForm(form): ApiForm<AckForm>,
) -> Result<Response, ApiError> {
    match acknowledge_alert(&app.db, caller.actor(), id, &form.comment, &form.for_)
        .await
        .map_err(ApiError::from)
    {
        Ok(()) => Ok(Redirect::to("/alerts").into_response()),
        Err(e) if e.status.is_client_error() => {
            render(&app, &caller, Form::default(), Some(e)).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    comment: String,
    #[serde(default, rename = "for")]
    for_: String,
}

pub async fn silence(
    State(app): State<AppState>,
    caller: Caller,
    ApiForm(form): ApiForm<SilenceForm>,
) -> Result<Response, ApiError> {
    let new = NewSilence {
        rule: Some(form.rule),
        site: Some(form.site),
        subject: Some(form.subject),
        comment: form.comment,
        for_: form.for_,
    };
    match silences::make(&app.db, caller.actor(), new)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => Ok(Redirect::to("/alerts").into_response()),
        Err(e) if e.status.is_client_error() => {
            render(&app, &caller, Form::default(), Some(e)).await
        }
        Err(e) => Err(e),
    }
}

pub async fn lift(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    silences::lift(&app.db, caller.actor(), id).await?;
    Ok(Redirect::to("/alerts").into_response())
}

async fn list(app: &AppState, form: &Form) -> Result<(Vec<Row>, Option<String>), ApiError> {
    fn choice<T: std::str::FromStr<Err = String>>(v: &str) -> Result<Option<T>, QueryError> {
        (!v.is_empty())
            .then(|| v.parse().map_err(bad_query))
            .transpose()
    }
    let filter = AlertFilter {
        state: choice::<AlertState>(&form.state)?,
        severity: choice::<Severity>(&form.severity)?,
        site: Some(form.site.clone()),
        cursor: form.cursor.clone(),
        ..Default::default()
    };
    let page = read(&app.db, filter).await?;
    let next = page.next_cursor.map(|cursor| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &form.state)
            .append_pair("severity", &form.severity)
            .append_pair("site", &form.site)
            .append_pair("cursor", &cursor)
            .finish();
        format!("/alerts?{query}")
    });
    // Firing first, then acknowledged, then history; newest first within each.
    let mut items = page.items;
    items.sort_by_key(|a| match a.state {
        AlertState::Firing => 0,
        AlertState::Acknowledged => 1,
        AlertState::Resolved => 2,
    });
    let rows = items
        .into_iter()
        .map(|a| Row {
            id: a.id,
            severity: a.severity.as_str(),
            state: a.state.as_str(),
            rule: a.rule,
            subject: a.subject,
            site: a.site.unwrap_or_default(),
            acknowledged: a
                .acknowledged
                .map(|k| format!("by {} until {}: {}", k.by, rfc3339(k.until), k.comment)),
            summary: a.summary,
            first_seen: rfc3339(a.first_seen),
            last_seen: rfc3339(a.last_seen),
            count: a.count,
        })
        .collect();
    Ok((rows, next))
}
