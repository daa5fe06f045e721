//! The alerts page: the same read as `GET /api/v1/alerts`, filtered by state and severity,
//! newest first, paged.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::db::alerts::{AlertState, Severity};
use crate::error::{ApiError, ApiQuery};
use crate::state::AppState;
use crate::web::api::alerts::{AlertFilter, read};
use crate::web::params::bad_query;
use crate::web::view::{self, Nav};

/// The form's fields, where "any" is an empty value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    #[serde(default)]
    state: String,
    #[serde(default)]
    severity: String,
    cursor: Option<String>,
}

struct Row {
    id: i64,
    severity: &'static str,
    state: &'static str,
    rule: String,
    subject: String,
    summary: String,
    first_seen: String,
    last_seen: String,
    count: u32,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    nav: Option<Nav>,
    rows: Vec<Row>,
    state: String,
    severity: String,
    next: Option<String>,
    error: Option<String>,
}

pub async fn page(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(form): ApiQuery<Form>,
) -> Result<Response, ApiError> {
    let (status, rows, next, error) = match list(&app, &form).await {
        Ok((rows, next)) => (StatusCode::OK, rows, next, None),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            (e.status, Vec::new(), None, Some(e.message))
        }
        Err(e) => return Err(e),
    };
    view::render(
        status,
        &AlertsPage {
            nav: Nav::of(&caller),
            rows,
            state: form.state,
            severity: form.severity,
            next,
            error,
        },
    )
}

async fn list(app: &AppState, form: &Form) -> Result<(Vec<Row>, Option<String>), ApiError> {
    fn choice<T: std::str::FromStr<Err = String>>(v: &str) -> Result<Option<T>, ApiError> {
        (!v.is_empty())
            .then(|| v.parse().map_err(bad_query))
            .transpose()
    }
    let filter = AlertFilter {
        state: choice::<AlertState>(&form.state)?,
        severity: choice::<Severity>(&form.severity)?,
        cursor: form.cursor.clone(),
        ..Default::default()
    };
    let page = read(app, filter).await?;
    let next = page.next_cursor.map(|cursor| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &form.state)
            .append_pair("severity", &form.severity)
            .append_pair("cursor", &cursor)
            .finish();
        format!("/alerts?{query}")
    });
    let rows = page
        .items
        .into_iter()
        .map(|a| Row {
            id: a.id,
            severity: a.severity.as_str(),
            state: a.state.as_str(),
            rule: a.rule,
            subject: a.subject,
            summary: a.summary,
            first_seen: rfc3339(a.first_seen),
            last_seen: rfc3339(a.last_seen),
            count: a.count,
        })
        .collect();
    Ok((rows, next))
}
