//! `GET /api/v1/audit` (admin): the audit log, newest first, filtered and paged, with the
//! state of its chain. Reading it is itself recorded.

use axum::Json;
use axum::extract::State;

use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::ops::audit;
pub use crate::ops::audit::{AuditFilter, AuditPage, ChainState};
use crate::state::AppState;

/// The audit log, newest first, with the state of its hash chain. Each read is recorded.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "list_audit", params(AuditFilter),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "A bad filter, time or cursor", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(
        audit::read(&state.db, &state.dir, caller.actor(), filter).await?,
    ))
}
