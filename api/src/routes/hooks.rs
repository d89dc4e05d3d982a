//! Webhooks: `POST /hooks/github/{org}/{project}` and `POST /hooks/gitlab/{org}/{project}`.
//! No session or token: GitHub signs the raw body with the project's webhook secret
//! (`X-Hub-Signature-256`), GitLab sends the secret itself (`X-Gitlab-Token`); both are
//! checked in constant time. A delivery id seen before starts nothing.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use sluice_core::crypto::{constant_time_eq, hmac_sha256_hex};
use sluice_core::db::begin_write;
use sluice_core::entities::project;
use sluice_core::store::projects;
use sluice_core::store::runs::{self, NewRun, Trigger};

use crate::error::ApiError;
use crate::state::AppState;

/// Largest webhook body accepted.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;
const DELETED_SHA: &str = "0000000000000000000000000000000000000000";

/// What a delivery asks for.
enum Decision {
    Run {
        git_ref: String,
        commit: Option<String>,
    },
    Ignore(String),
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().map(str::to_owned)
}

/// A branch push runs only on the default branch; tags always run.
fn push(
    project: &project::Model,
    git_ref: Option<String>,
    commit: Option<String>,
    deleted: bool,
) -> Decision {
    let Some(git_ref) = git_ref else {
        return Decision::Ignore("no ref in the push".into());
    };
    if deleted {
        return Decision::Ignore(format!("deleted ref {git_ref}"));
    }
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        return Decision::Run {
            git_ref: tag.to_owned(),
            commit,
        };
    }
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(&git_ref);
    if branch != project.default_branch {
        return Decision::Ignore(format!(
            "push to {branch}, not the default branch {}",
            project.default_branch
        ));
    }
    Decision::Run {
        git_ref: branch.to_owned(),
        commit,
    }
}

fn github_decision(project: &project::Model, event: &str, body: &Value) -> Decision {
    match event {
        "ping" => Decision::Ignore("ping".into()),
        "push" => {
            let commit = text(body, &["head_commit", "id"]).or_else(|| text(body, &["after"]));
            let deleted = body
                .get("deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            push(project, text(body, &["ref"]), commit, deleted)
        }
        "pull_request" => match text(body, &["action"]).as_deref() {
            Some("opened" | "synchronize" | "reopened") => {
                match text(body, &["pull_request", "head", "ref"]) {
                    Some(git_ref) => Decision::Run {
                        git_ref,
                        commit: text(body, &["pull_request", "head", "sha"]),
                    },
                    None => Decision::Ignore("pull request without a head ref".into()),
                }
            }
            other => Decision::Ignore(format!(
                "pull_request {}",
                other.unwrap_or("without action")
            )),
        },
        other => Decision::Ignore(format!("event {other}")),
    }
}

fn gitlab_decision(project: &project::Model, event: &str, body: &Value) -> Decision {
    match event {
        "Push Hook" | "Tag Push Hook" => {
            let after = text(body, &["after"]);
            let deleted = after.as_deref() == Some(DELETED_SHA);
            let commit = text(body, &["checkout_sha"]).or(after);
            push(project, text(body, &["ref"]), commit, deleted)
        }
        "Merge Request Hook" => match text(body, &["object_attributes", "action"]).as_deref() {
            Some("open" | "reopen" | "update") => {
                match text(body, &["object_attributes", "source_branch"]) {
                    Some(git_ref) => Decision::Run {
                        git_ref,
                        commit: text(body, &["object_attributes", "last_commit", "id"]),
                    },
                    None => Decision::Ignore("merge request without a source branch".into()),
                }
            }
            other => Decision::Ignore(format!(
                "merge request {}",
                other.unwrap_or("without action")
            )),
        },
        other => Decision::Ignore(format!("event {other}")),
    }
}

/// One delivery as received.
struct Delivery<'a> {
    provider: &'static str,
    org: &'a str,
    project: &'a str,
    body: &'a Bytes,
    /// The provider's delivery id, for deduplication.
    id: Option<&'a str>,
}

/// The shared path: find the project, authenticate, parse, decide, queue once.
async fn receive(
    state: &AppState,
    delivery: Delivery<'_>,
    authenticate: impl FnOnce(&str) -> bool,
    decide: impl FnOnce(&project::Model, &Value) -> Decision,
) -> Result<HttpResponse, ApiError> {
    let Delivery {
        provider,
        org,
        project: slug,
        body,
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
    if !authenticate(&secret) {
        count("unauthorized");
        return Err(ApiError::Unauthorized);
    }
    let payload: Value = serde_json::from_slice(body).map_err(|e| {
        count("malformed");
        ApiError::BadRequest {
            message: format!("the body is not JSON: {e}"),
            details: None,
        }
    })?;
    let (git_ref, commit) = match decide(&project, &payload) {
        Decision::Ignore(reason) => {
            count("ignored");
            return Ok(HttpResponse::Ok().json(json!({ "ignored": reason })));
        }
        Decision::Run { git_ref, commit } => (git_ref, commit),
    };
    let trigger = if provider == "github" {
        Trigger::Github
    } else {
        Trigger::Gitlab
    };
    let new = NewRun {
        trigger,
        git_ref: Some(git_ref),
        commit,
        params: Default::default(),
    };
    let txn = begin_write(&state.db).await?;
    match runs::create_from_webhook(&txn, &project, provider, delivery_id, new).await? {
        Some(run) => {
            txn.commit().await?;
            sluice_core::dispatch::wake();
            count("queued");
            Ok(HttpResponse::Accepted().json(json!({ "run": run.number })))
        }
        None => {
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
        let expected = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body));
        constant_time_eq(&signature, &expected)
    };
    let decide =
        |project: &project::Model, payload: &Value| github_decision(project, &event, payload);
    let delivery = Delivery {
        provider: "github",
        org: &org,
        project: &slug,
        body: &body,
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
    let authenticate = |secret: &str| constant_time_eq(&token, secret);
    let decide =
        |project: &project::Model, payload: &Value| gitlab_decision(project, &event, payload);
    let delivery = Delivery {
        provider: "gitlab",
        org: &org,
        project: &slug,
        body: &body,
        id: header(&req, "x-gitlab-event-uuid"),
    };
    receive(&state, delivery, authenticate, decide).await
}
