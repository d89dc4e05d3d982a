//! Invitation links: `GET /invitations/{token}` names the org and the role whoever holds the
//! link (signed out, it offers to sign up or sign in and come back to accept), `POST` accepts
//! it, and an admin revokes a pending one from the org's settings.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::store::invitations::{self, Preview};

use crate::pages::flash::see_other_notice;
use crate::pages::{Nav, PageError, Visitor, render, urlencode};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    nav: Nav,
    token: String,
    invitation: Preview,
    role: &'static str,
    /// The signed-in person's email, when someone is signed in.
    signed_in_as: Option<String>,
    /// Where to come back to after signing up or in.
    back: String,
    form_error: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

/// `GET /invitations/{token}`: signed in or not.
pub async fn show(
    state: web::Data<AppState>,
    visitor: Visitor,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = path.into_inner();
    let invitation = invitations::preview(&state.db, &token).await?;
    let (nav, signed_in_as) = match &visitor.0 {
        Some(who) => (who.nav(&state, None).await?, Some(who.user.email.clone())),
        None => (Nav::anonymous(), None),
    };
    let page = InvitationPage {
        nav,
        back: urlencode(&format!("/invitations/{token}")),
        role: invitation.role.as_str(),
        token,
        invitation,
        signed_in_as,
        form_error: None,
    };
    render(StatusCode::OK, &page)
}

/// `POST /invitations/{token}`: joins the org, then its projects with a notice.
pub async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    who.check_csrf(&state, &form.csrf_token)?;
    let token = path.into_inner();
    let txn = begin_write(&state.db).await?;
    match invitations::accept(&txn, &who.user, &token).await {
        Ok((org, role)) => {
            txn.commit().await?;
            Ok(see_other_notice(
                &format!("/orgs/{}/projects", org.slug),
                &format!("You joined {} as {}.", org.name, role.as_str()),
            ))
        }
        Err(sluice_core::Error::NotFound) => Err(PageError::NotFound),
        Err(err) => {
            txn.rollback().await?;
            let invitation = invitations::preview(&state.db, &token).await?;
            let page = InvitationPage {
                nav: who.nav(&state, None).await?,
                back: urlencode(&format!("/invitations/{token}")),
                role: invitation.role.as_str(),
                token,
                invitation,
                signed_in_as: Some(who.user.email.clone()),
                form_error: Some(err.to_string()),
            };
            render(StatusCode::CONFLICT, &page)
        }
    }
}

/// `POST /orgs/{org}/invitations/{id}/revoke` (admin).
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
    invitations::revoke(&txn, &scope, id).await?;
    txn.commit().await?;
    Ok(see_other_notice(
        &format!("/orgs/{org}/settings#pending"),
        "The invitation was revoked: its link no longer works.",
    ))
}
