//! The client API's OpenAPI 3.1 document, generated from the handlers and types (utoipa),
//! served at `/api/v1/openapi.json` and committed as `docs/openapi.json`; a test keeps the two
//! equal. The report itself is described by the schema the `shared` crate generates (the one
//! committed as `shared/schema/report.schema.json`), so there is one definition of it.

use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use super::api::{
    alerts, audit, bans, enrollment, hosts, probes, reports, silences, sites, ssh, ssh_revoked_keys,
};
use crate::db::Ban;
use crate::db::alerts::{Acknowledgement, Alert, AlertState, Severity};
use crate::db::audit::AuditEntry;
use crate::db::silences::{Matcher, Silence};
use crate::db::{
    Change, ChangeKind, Gap, HostDetail, HostSummary, Interval, OpenPort, Page, PortTimeline,
    ProbeStatus, ProbeSummary, ReportSummary, Resolution, TokenInfo, TokenState, WanPoint,
};
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Seahawks nester client API",
        description = "Sites, probes, their reports, hosts with their port timelines, WAN latency and the change feed, alerts (and `Notification`, the body of the webhooks that deliver them: POSTed as JSON with `X-Seahawks-Delivery` (its `id`, the same on retries), `X-Seahawks-Timestamp` (Unix seconds) and `X-Seahawks-Signature: sha256=HEX`, the HMAC-SHA256 of `TIMESTAMP.BODY` with the channel's secret); for admins, enrollment tokens, revoking probes, the audit log and the bans.\n\nPaging, the same on every list: `limit` (1-500, default 50) and `cursor`, the opaque `next_cursor` of the previous page; `next_cursor` is absent on the last page. Times are RFC 3339. Errors have the shape `{\"error\": {\"code\", \"message\"}}`.\n\nAuthentication: an API token (`nester api-token create`, or the account page) as `Authorization: Bearer shk_...`, or a signed-in browser session. Without either, 401; with a role or token scope that may not, 403. Calls that change something (`POST`) need the `admin` role (acknowledging alerts and silences: `noc` or `admin`; SSH certificates: `support` or `admin`, with a fresh TOTP code) and, with a token, the `read-write` scope; from a browser session, the session's CSRF token."
    ),
    paths(
        sites::list, sites::changes, probes::list, probes::one, probes::reports, probes::hosts,
        probes::wan, probes::gaps, probes::revoke, hosts::search, hosts::one, reports::parsed,
        reports::signed, enrollment::list, enrollment::create, enrollment::revoke, audit::list, bans::list, alerts::list, alerts::acknowledge, silences::list,
        silences::create, silences::lift, ssh::authorities, ssh::krl, ssh::list, ssh::create, ssh::revoke,
        ssh_revoked_keys::create, ssh_revoked_keys::list,
        document
    ),
    components(schemas(
        ProbeSummary, ProbeStatus, probes::ProbeDetail, ReportSummary, Page<ReportSummary>, Gap,
        HostSummary, OpenPort, HostDetail, Interval, PortTimeline, Page<HostSummary>, Change,
        ChangeKind, Page<Change>, WanPoint, Resolution, probes::WanSeries, sites::SiteSummary,
        TokenInfo, TokenState, enrollment::TokenView, enrollment::NewToken,
        enrollment::CreatedToken, audit::AuditPage, audit::ChainState, AuditEntry, Ban, alerts::AlertPage, Alert, Severity, AlertState, Acknowledgement,
        alerts::Acknowledge, Silence, Matcher, silences::NewSilence, silences::CreatedSilence,
        ssh::NewCertificate, ssh::IssuedCertificate, ssh::SshAuthorities,
        crate::db::ssh_certificates::SshCertificate, ssh_revoked_keys::NewRevokedKey,
        crate::db::ssh_trust::RevokedKey,
        crate::notify::message::Notification, crate::notify::message::NotifiedAlert, ErrorBody,
        ErrorDetail
    )),
    modifiers(&Security),
    security(("api_token" = []), ("session" = []))
)]
struct ApiDoc;

/// The two ways to authenticate: an API token, or the browser's session cookie.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token, `shk_...`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::session::SESSION_COOKIE,
            ))),
        );
        // Every operation that is not public can answer 401 and 403.
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if operation
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(|r| *r == Default::default()))
                {
                    continue;
                }
                for (status, why) in [
                    (
                        "401",
                        "Not signed in, or the API token is unknown, expired or revoked",
                    ),
                    ("403", "The role or the token's scope does not allow this"),
                ] {
                    operation
                        .responses
                        .responses
                        .insert(status.into(), error_response(why));
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(generate).clone())
}

/// The whole document: utoipa's, with the report schema added under `components` and used
/// by the parsed-report response.
#[allow(
    clippy::expect_used,
    reason = "utoipa's document and the report schema are JSON by construction; a test generates both"
)]
pub fn generate() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("OpenAPI is JSON");
    let mut report = shared::report::json_schema();
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("utoipa writes components.schemas");
    // The report schema's own definitions become components, and its references follow.
    if let Some(Value::Object(defs)) = report.as_object_mut().and_then(|r| r.remove("$defs")) {
        for (name, mut def) in defs {
            rewrite_refs(&mut def);
            schemas.insert(name, def);
        }
    }
    if let Some(r) = report.as_object_mut() {
        // `$id` would change what the references resolve against; `$schema` is implied.
        r.remove("$id");
        r.remove("$schema");
    }
    rewrite_refs(&mut report);
    schemas.insert("Report".into(), report);
    doc["paths"]["/api/v1/reports/{report_id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"] = serde_json::json!({ "$ref": "#/components/schemas/Report" });
    doc
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document is what the code generates. After a deliberate change:
    /// `UPDATE_OPENAPI=1 cargo test -p nester committed_openapi`.
    #[test]
    fn committed_openapi_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let generated = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            // CI checks the committed file; it never rewrites it.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "UPDATE_OPENAPI is refused in CI"
            );
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is out of date with the API; run UPDATE_OPENAPI=1 cargo test -p nester committed_openapi"
        );
    }

    /// Both ways: every documented operation is a route, and every route under `/api/` is
    /// documented, with the same method.
    #[test]
    fn the_document_and_the_routes_name_the_same_api() {
        let doc = generate();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        let mut routed: Vec<(String, String)> = crate::web::routes()
            .iter()
            .filter(|r| r.path.starts_with("/api/"))
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }

    #[test]
    fn every_reference_resolves_and_the_report_is_described() {
        let doc = generate();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "Report",
            "Host",
            "Port",
            "OsGuess",
            "ProbeSummary",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {r}"));
            assert!(schemas.contains_key(name), "dangling reference {r}");
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
