//! API token pages: list, create (the token is shown once), revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::store::{PageRequest, tokens};
use sluice_core::tenancy::{Scope, TenantScope};

use crate::pages::account::CsrfForm;
use crate::pages::flash::see_other_notice;
use crate::pages::{FieldErrors, Nav, PageError, SignedIn, Visitor, field_error, render};
use crate::state::AppState;

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub last_used: String,
    pub expires: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    nav: Nav,
    org: String,
    org_name: String,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    name: String,
    expires_in_days: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    scope_read: Option<String>,
    scope_write: Option<String>,
    scope_admin: Option<String>,
    #[serde(default)]
    expires_in_days: String,
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>, none: &str) -> String {
    at.map_or_else(
        || none.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

async fn tokens_page(
    state: &AppState,
    who: &SignedIn,
    scope: &TenantScope,
    created: Option<String>,
    name: String,
    expires: String,
    errors: FieldErrors,
) -> Result<TokensPage, PageError> {
    let rows = tokens::list(
        &state.db,
        scope,
        &PageRequest {
            limit: Some(200),
            cursor: None,
        },
    )
    .await?
    .items;
    Ok(TokensPage {
        org_name: scope.org().name.clone(),
        nav: who.nav(state, Some(&scope.org().slug)).await?,
        org: scope.org().slug.clone(),
        tokens: rows
            .iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name.clone(),
                prefix: t.prefix.clone(),
                scopes: t.scopes.replace(',', ", "),
                last_used: when(t.last_used_at, "never"),
                expires: when(t.expires_at, "never"),
                revoked: t.revoked_at.is_some(),
            })
            .collect(),
        created,
        name,
        expires_in_days: expires,
        errors,
    })
}

/// `GET /orgs/{org}/tokens` (admin).
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let scope = who.scope(&state, &path).await?;
    render(
        StatusCode::OK,
        &tokens_page(
            &state,
            &who,
            &scope,
            None,
            String::new(),
            String::new(),
            FieldErrors::new(),
        )
        .await?,
    )
}

/// `POST /orgs/{org}/tokens`: answers with the page showing the new token once.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let scope = who.form_scope(&state, &path, &form.csrf_token).await?;
    let form = form.into_inner();
    let scopes: Vec<Scope> = [
        (Scope::Read, &form.scope_read),
        (Scope::Write, &form.scope_write),
        (Scope::Admin, &form.scope_admin),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(s, _)| s)
    .collect();
    let mut errors = FieldErrors::new();
    let expires = match form.expires_in_days.trim() {
        "" => None,
        days => match days.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                errors.insert("expires_in_days", "must be a whole number of days".into());
                None
            }
        },
    };
    if errors.is_empty() {
        let txn = begin_write(&state.db).await?;
        match tokens::create(&txn, &scope, &form.name, &scopes, expires).await {
            Ok((_, raw)) => {
                txn.commit().await?;
                return render(
                    StatusCode::CREATED,
                    &tokens_page(
                        &state,
                        &who,
                        &scope,
                        Some(raw),
                        String::new(),
                        String::new(),
                        errors,
                    )
                    .await?,
                );
            }
            Err(err) => {
                txn.rollback().await?;
                field_error(err, &mut errors)?;
            }
        }
    }
    render(
        StatusCode::BAD_REQUEST,
        &tokens_page(
            &state,
            &who,
            &scope,
            None,
            form.name,
            form.expires_in_days,
            errors,
        )
        .await?,
    )
}

/// `POST /orgs/{org}/tokens/{id}/revoke`.
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, id) = path.into_inner();
    let scope = who.form_scope(&state, &org, &form.csrf_token).await?;
    let txn = begin_write(&state.db).await?;
    tokens::revoke(&txn, &scope, id).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("/orgs/{org}/tokens"),
        "The token was revoked: calls made with it are refused from now on.",
    ))
}
