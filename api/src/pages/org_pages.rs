//! Organisation pages: the list and switcher, settings (members, roles, invitations, audit
//! log) and accepting an invitation.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::store::{PageRequest, audit, invitations, orgs};
use sluice_core::tenancy::{Principal, Role, TenantScope};

use crate::pages::account::CsrfForm;
use crate::pages::flash::see_other_notice;
use crate::pages::{FieldErrors, Nav, PageError, SignedIn, Visitor, field_error, render};
use crate::routes::base_url;
use crate::state::AppState;

const ROLES: [&str; 4] = ["viewer", "developer", "admin", "owner"];

pub struct OrgRow {
    pub slug: String,
    pub name: String,
    pub role: &'static str,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    nav: Nav,
    orgs: Vec<OrgRow>,
    name: String,
    slug: String,
    errors: FieldErrors,
}

pub struct MemberRow {
    pub user_id: i64,
    pub name: String,
    pub email: String,
    pub role: &'static str,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    org: String,
    org_name: String,
    is_admin: bool,
    roles: [&'static str; 4],
    members: Vec<MemberRow>,
    audit: Vec<AuditRow>,
    invitation_link: Option<String>,
    invite_email: String,
    errors: FieldErrors,
    pending: Vec<PendingRow>,
}

/// An invitation not accepted yet, on the settings page.
pub struct PendingRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub expires: String,
}

#[derive(Deserialize)]
pub struct CreateOrgForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    role: String,
}

async fn orgs_page(
    state: &AppState,
    who: &SignedIn,
    name: String,
    slug: String,
    errors: FieldErrors,
) -> Result<OrgsPage, PageError> {
    let page = PageRequest {
        limit: Some(200),
        cursor: None,
    };
    let orgs = orgs::list_for_principal(&state.db, &Principal::User(who.user.clone()), &page)
        .await?
        .items
        .into_iter()
        .map(|(o, role)| OrgRow {
            slug: o.slug,
            name: o.name,
            role: role.as_str(),
        })
        .collect();
    Ok(OrgsPage {
        nav: who.nav(state, None).await?,
        orgs,
        name,
        slug,
        errors,
    })
}

/// `GET /orgs`.
pub async fn index(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    render(
        StatusCode::OK,
        &orgs_page(
            &state,
            &who,
            String::new(),
            String::new(),
            FieldErrors::new(),
        )
        .await?,
    )
}

/// `POST /orgs`.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    form: web::Form<CreateOrgForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    who.check_csrf(&state, &form.csrf_token)?;
    let form = form.into_inner();
    let txn = begin_write(&state.db).await?;
    let created = orgs::create(&txn, who.user.id, form.slug.trim(), &form.name).await;
    match created {
        Ok(org) => {
            txn.commit().await?;
            Ok(see_other_notice(
                &format!("/orgs/{}/projects", org.slug),
                &format!("{} was created: you are its owner.", org.name),
            ))
        }
        Err(err) => {
            txn.rollback().await?;
            let mut errors = FieldErrors::new();
            field_error(err, &mut errors)?;
            render(
                StatusCode::BAD_REQUEST,
                &orgs_page(&state, &who, form.name, form.slug, errors).await?,
            )
        }
    }
}

async fn settings_page(
    state: &AppState,
    who: &SignedIn,
    scope: &TenantScope,
    invitation_link: Option<String>,
    invite_email: String,
    errors: FieldErrors,
) -> Result<SettingsPage, PageError> {
    let all = PageRequest {
        limit: Some(200),
        cursor: None,
    };
    let members = orgs::members(&state.db, scope, &all).await?.items;
    let is_admin = scope.role() >= Role::Admin;
    let audit = if is_admin {
        let entries = audit::list(
            &state.db,
            scope,
            &PageRequest {
                limit: Some(50),
                cursor: None,
            },
        )
        .await?
        .items;
        entries
            .into_iter()
            .map(|e| AuditRow {
                at: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor: e
                    .actor_user_id
                    .and_then(|id| members.iter().find(|m| m.user_id == id))
                    .map_or_else(|| "someone no longer here".to_owned(), |m| m.email.clone()),
                action: e.action,
                target: format!("{} {}", e.target_type, e.target_id),
            })
            .collect()
    } else {
        Vec::new()
    };
    let pending = if is_admin {
        invitations::pending(&state.db, scope)
            .await?
            .into_iter()
            .map(|i| PendingRow {
                id: i.id,
                email: i.email,
                role: i.role,
                expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(SettingsPage {
        pending,
        nav: who.nav(state, Some(&scope.org().slug)).await?,
        org: scope.org().slug.clone(),
        org_name: scope.org().name.clone(),
        is_admin,
        roles: ROLES,
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id,
                name: m.name,
                email: m.email,
                role: m.role.as_str(),
            })
            .collect(),
        audit,
        invitation_link,
        invite_email,
        errors,
    })
}

/// `GET /orgs/{org}/settings`.
pub async fn settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let scope = who.scope(&state, &path).await?;
    render(
        StatusCode::OK,
        &settings_page(
            &state,
            &who,
            &scope,
            None,
            String::new(),
            FieldErrors::new(),
        )
        .await?,
    )
}

/// `POST /orgs/{org}/invitations`: shows the link on the settings page.
pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let scope = who.form_scope(&state, &path, &form.csrf_token).await?;
    let role = Role::parse(&form.role)?;
    let txn = begin_write(&state.db).await?;
    match invitations::create(&txn, &scope, &form.email, role).await {
        Ok((_, raw)) => {
            txn.commit().await?;
            let link = format!("{}/invitations/{raw}", base_url(&state, &req));
            render(
                StatusCode::OK,
                &settings_page(
                    &state,
                    &who,
                    &scope,
                    Some(link),
                    String::new(),
                    FieldErrors::new(),
                )
                .await?,
            )
        }
        Err(err) => {
            txn.rollback().await?;
            let mut errors = FieldErrors::new();
            field_error(err, &mut errors)?;
            let page =
                settings_page(&state, &who, &scope, None, form.email.clone(), errors).await?;
            render(StatusCode::BAD_REQUEST, &page)
        }
    }
}

/// `POST /orgs/{org}/members/{user_id}/role`.
pub async fn change_role(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, i64)>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, user_id) = path.into_inner();
    let scope = who.form_scope(&state, &org, &form.csrf_token).await?;
    let role = Role::parse(&form.role)?;
    let txn = begin_write(&state.db).await?;
    orgs::set_role(&txn, &scope, user_id, role).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("/orgs/{org}/settings"),
        &format!("The member's role is now {}.", role.as_str()),
    ))
}

/// `POST /orgs/{org}/members/{user_id}/remove`.
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<(String, i64)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let (org, user_id) = path.into_inner();
    let scope = who.form_scope(&state, &org, &form.csrf_token).await?;
    let txn = begin_write(&state.db).await?;
    orgs::remove_member(&txn, &scope, user_id).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("/orgs/{org}/settings"),
        "The member was removed from the organisation.",
    ))
}
