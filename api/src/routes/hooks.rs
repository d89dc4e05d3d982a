//! Webhooks: `POST /hooks/github/{org}/{project}` and `POST /hooks/gitlab/{org}/{project}`.
//! No session or token: GitHub signs the raw body with the project's webhook secret
//! (`X-Hub-Signature-256`), GitLab sends the secret itself (`X-Gitlab-Token`); both are
//! checked in constant time. A delivery id seen before starts nothing. What a payload asks
//! for is read in `hook_events`.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use sluice_core::crypto::{constant_time_eq, hmac_sha256_hex};
use sluice_core::db::begin_write;
use sluice_core::entities::project;
use sluice_core::store::projects;
use sluice_core::store::runs::{self, Delivered};

use crate::error::ApiError;
use crate::routes::hook_events::{self, Decision};
use crate::state::AppState;

/// Largest webhook body accepted.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The JSON payload: the body itself, or GitHub's form-encoded `payload=` field.
fn payload(form_encoded: bool, body: &[u8]) -> Result<Value, String> {
    if !form_encoded {
        return serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"));
    }
    let field = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or("the form-encoded body has no `payload` field")?;
    serde_json::from_str(&field).map_err(|e| format!("the `payload` field is not JSON: {e}"))
}

/// One delivery as received.
struct Delivery<'a> {
    provider: &'static str,
    org: &'a str,
    project: &'a str,
    body: &'a Bytes,
    /// GitHub's `application/x-www-form-urlencoded` deliveries carry the JSON in `payload`.
    form_encoded: bool,
    /// The provider's delivery id, for deduplication.
    id: Option<&'a str>,
}

/// The shared path: find the project, authenticate, parse, decide, queue once.
async fn receive(
    state: &AppState,
    delivery: Delivery<'_>,
    authenticate: impl FnOnce(&str) -> Result<(), String>,
    decide: impl FnOnce(&project::Model, &Value) -> Decision,
) -> Result<HttpResponse, ApiError> {
    let Delivery {
        provider,
        org,
        project: slug,
        body,
        form_encoded,
        id: delivery_id,
    } = delivery;
    let count = |outcome: &str| {
        state
            .metrics
            .webhooks
            .with_label_values(&[provider, outcome])
            .inc()
    };
    if body.len() > MAX_WEBHOOK_BYTES {
        count("too_large");
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_WEBHOOK_BYTES,
        });
    }
    let project = projects::find_for_webhook(&state.db, org, slug).await?;
    let secret = projects::webhook_secret(&state.keys, &project)?;
    if let Err(message) = authenticate(&secret) {
        count("unauthorized");
        return Err(ApiError::WebhookUnauthorized(message));
    }
    let payload = payload(form_encoded, body).map_err(|message| {
        count("malformed");
        ApiError::BadRequest {
            message,
            details: None,
        }
    })?;
    let new = match decide(&project, &payload) {
        Decision::Ignore(reason) => {
            count("ignored");
            return Ok(HttpResponse::Ok().json(json!({ "ignored": reason })));
        }
        Decision::Run(new) => *new,
    };
    let txn = begin_write(&state.db).await?;
    match runs::create_from_webhook(&txn, &project, provider, delivery_id, new).await? {
        Delivered::Queued(run) => {
            txn.commit().await?;
            sluice_core::dispatch::wake();
            count("queued");
            Ok(HttpResponse::Accepted().json(json!({ "run": run.number })))
        }
        Delivered::Folded(run) => {
            txn.commit().await?;
            count("folded");
            Ok(HttpResponse::Accepted().json(json!({ "run": run.number, "folded": true })))
        }
        Delivered::Duplicate => {
            txn.rollback().await?;
            count("duplicate");
            Ok(HttpResponse::Ok().json(json!({ "ignored": "duplicate delivery" })))
        }
    }
}

/// `POST /hooks/github/{org}/{project}`.
pub async fn github(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let signature = header(&req, "x-hub-signature-256")
        .unwrap_or_default()
        .to_owned();
    let event = header(&req, "x-github-event")
        .unwrap_or_default()
        .to_owned();
    let authenticate = |secret: &str| {
        if signature.is_empty() {
            return Err("missing X-Hub-Signature-256: set the GitHub webhook's secret to this project's webhook secret".to_owned());
        }
        let expected = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body));
        if constant_time_eq(&signature, &expected) {
            Ok(())
        } else {
            Err("X-Hub-Signature-256 does not match: the body was not signed with this project's webhook secret".to_owned())
        }
    };
    let decide =
        |project: &project::Model, payload: &Value| hook_events::github(project, &event, payload);
    let form_encoded = header(&req, "content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let delivery = Delivery {
        provider: "github",
        org: &org,
        project: &slug,
        body: &body,
        form_encoded,
        id: header(&req, "x-github-delivery"),
    };
    receive(&state, delivery, authenticate, decide).await
}

/// `POST /hooks/gitlab/{org}/{project}`.
pub async fn gitlab(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, slug) = path.into_inner();
    let token = header(&req, "x-gitlab-token")
        .unwrap_or_default()
        .to_owned();
    let event = header(&req, "x-gitlab-event")
        .unwrap_or_default()
        .to_owned();
    let authenticate = |secret: &str| {
        if token.is_empty() {
            Err("missing X-Gitlab-Token: set the GitLab webhook's secret token to this project's webhook secret".to_owned())
        } else if constant_time_eq(&token, secret) {
            Ok(())
        } else {
            Err("X-Gitlab-Token does not match this project's webhook secret".to_owned())
        }
    };
    let decide =
        |project: &project::Model, payload: &Value| hook_events::gitlab(project, &event, payload);
    // GitLab keeps `Idempotency-Key` across retries of one delivery; older versions send only
    // the event UUID.
    let id = header(&req, "idempotency-key").or_else(|| header(&req, "x-gitlab-event-uuid"));
    let delivery = Delivery {
        provider: "gitlab",
        org: &org,
        project: &slug,
        body: &body,
        form_encoded: false,
        id,
    };
    receive(&state, delivery, authenticate, decide).await
}
