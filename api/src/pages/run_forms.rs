//! What the run pages' forms do: start a run (now, or with a ref and parameters), cancel it,
//! answer its gate, run it again. Each redirects to the run with a notice.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use sluice_core::db::begin_write;
use sluice_core::store::runs::{self, NewRun, Trigger};

use crate::pages::flash::see_other_notice;
use crate::pages::run_pages::CsrfForm;
use crate::pages::{PageError, Visitor, render, see_other};
use crate::routes::run_actions::{self, Approval};
use crate::state::AppState;

fn run_url(org: &str, slug: &str, number: i64) -> String {
    format!("/orgs/{org}/projects/{slug}/runs/{number}")
}

/// `POST /orgs/{org}/projects/{project}/runs`: runs the default branch now, or the `ref` and
/// `param_NAME` values of the "Run with parameters" form (a refused value shows the form again
/// with the reason).
pub async fn trigger(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug) = path.into_inner();
    let field = |name: &str| {
        form.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    let scope = who
        .form_scope(&state, &org, &field("csrf_token").unwrap_or_default())
        .await?;
    let project = sluice_core::store::projects::get(&state.db, &scope, &slug).await?;
    let specs = project
        .pipeline_params
        .as_deref()
        .map(sluice_core::store::params::from_json)
        .unwrap_or_default();
    // The last value of a field wins: a checkbox follows its hidden `false`.
    let mut given = std::collections::BTreeMap::new();
    for (key, value) in form.iter() {
        let Some(name) = key.strip_prefix("param_") else {
            continue;
        };
        let blank_password =
            value.is_empty() && specs.iter().any(|s| s.name == name && s.kind == "password");
        if !blank_password {
            // Browsers send a textarea's line breaks as CRLF.
            given.insert(name.to_owned(), value.replace("\r\n", "\n"));
        }
    }
    let git_ref = field("ref").filter(|r| !r.is_empty());
    let mut new = NewRun::of(Trigger::Api, git_ref.clone(), None);
    new.params = given.clone();
    let created = async {
        crate::routes::runs::resolve(&state, &scope, &slug, &mut new).await?;
        let txn = begin_write(&state.db).await?;
        let created = runs::create(&txn, &scope, &slug, new).await?;
        txn.commit().await?;
        Ok::<_, sluice_core::Error>(created)
    }
    .await;
    match created {
        Ok(created) => {
            sluice_core::dispatch::wake();
            Ok(see_other(&run_url(&org, &slug, created.number)))
        }
        Err(sluice_core::Error::Invalid { field, message }) => {
            let error = Some(format!("Not started ({field}): {message}"));
            let form =
                crate::pages::run_form::page(&state, &who, &scope, project, git_ref, &given, error)
                    .await?;
            render(StatusCode::BAD_REQUEST, &form)
        }
        Err(other) => Err(other.into()),
    }
}

/// `POST .../runs/{number}/cancel`.
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug, number) = path.into_inner();
    let scope = who.form_scope(&state, &org, &form.csrf_token).await?;
    run_actions::cancel_run(&state, &scope, &slug, number).await?;
    Ok(see_other_notice(
        &run_url(&org, &slug, number),
        &format!("Cancelling run #{number}: its steps are being stopped."),
    ))
}

/// `POST .../runs/{number}/approve` with `id`, `approve` (`true` or `false`) and a
/// `param_NAME` field per gate parameter.
pub async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug, number) = path.into_inner();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let scope = who.form_scope(&state, &org, &field("csrf_token")).await?;
    let params = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("param_")?.to_owned(), v.clone())))
        .collect();
    let approve = field("approve") == "true";
    let approval = Approval {
        id: field("id"),
        approve,
        params,
    };
    run_actions::answer_gate(&state, &scope, &slug, number, approval).await?;
    Ok(see_other_notice(
        &run_url(&org, &slug, number),
        if approve {
            "Approved: the run goes on."
        } else {
            "Rejected: the run stops here."
        },
    ))
}

/// `POST .../runs/{number}/rerun`.
pub async fn rerun(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, slug, number) = path.into_inner();
    let scope = who.form_scope(&state, &org, &form.csrf_token).await?;
    let created = run_actions::rerun_run(&state, &scope, &slug, number).await?;
    Ok(see_other_notice(
        &run_url(&org, &slug, created.number),
        &format!("Run #{} repeats run #{number}.", created.number),
    ))
}
