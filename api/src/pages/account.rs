//! Sign-up, sign-in and sign-out pages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::store::sessions;

use crate::auth::session_cookie;
use crate::error::ApiError;
use crate::pages::{
    FieldErrors, Nav, NextQuery, PageError, Visitor, render, safe_next, same_origin, see_other,
};
use crate::routes::auth::{LoginRequest, SignupRequest, check_password, create_account, limit};
use crate::state::AppState;

/// A sign-in button for an OAuth provider.
pub struct ProviderButton {
    pub name: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    nav: Nav,
    local_accounts: bool,
    providers: Vec<ProviderButton>,
    email: String,
    next: String,
    errors: FieldErrors,
    form_error: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    nav: Nav,
    name: String,
    email: String,
    next: String,
    errors: FieldErrors,
    form_error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

pub(crate) fn login_page(
    state: &AppState,
    email: String,
    next: String,
    form_error: Option<String>,
) -> LoginPage {
    LoginPage {
        nav: Nav::anonymous(),
        local_accounts: state.local_accounts,
        providers: state
            .oauth
            .all()
            .map(|p| ProviderButton {
                name: p.name.clone(),
                label: p.label.clone(),
            })
            .collect(),
        email,
        next,
        errors: FieldErrors::new(),
        form_error,
    }
}

/// Signs the new session in and redirects to `next`.
pub(crate) async fn signed_in(
    state: &AppState,
    user_id: i64,
    next: &str,
) -> Result<HttpResponse, PageError> {
    let raw = sessions::create(&state.db, user_id).await?;
    let mut res = see_other(next);
    res.add_cookie(&session_cookie(state, Some(&raw)))
        .map_err(|e| PageError::Internal(Box::new(e)))?;
    Ok(res)
}

/// `GET /login`.
pub async fn login_form(
    state: web::Data<AppState>,
    visitor: Visitor,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let next = safe_next(query.next.as_deref())?;
    if visitor.0.is_some() {
        return Ok(see_other(&next));
    }
    render(
        StatusCode::OK,
        &login_page(&state, String::new(), next, None),
    )
}

/// `POST /login`: only from this site's own form (login CSRF).
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    same_origin(&state, &req)?;
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref())?;
    let attempt = async {
        if !state.local_accounts {
            return Err(ApiError::Forbidden(
                "local accounts are disabled here".into(),
            ));
        }
        limit(&state, &req, "login")?;
        check_password(
            &state,
            LoginRequest {
                email: form.email.clone(),
                password: form.password,
            },
        )
        .await
    };
    match attempt.await {
        Ok(user) => signed_in(&state, user.id, &next).await,
        Err(err) => {
            let status = actix_web::ResponseError::status_code(&err);
            render(
                status,
                &login_page(&state, form.email, next, Some(err.to_string())),
            )
        }
    }
}

/// `GET /signup`.
pub async fn signup_form(
    visitor: Visitor,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let next = safe_next(query.next.as_deref())?;
    if visitor.0.is_some() {
        return Ok(see_other(&next));
    }
    let page = SignupPage {
        nav: Nav::anonymous(),
        name: String::new(),
        email: String::new(),
        next,
        errors: FieldErrors::new(),
        form_error: None,
    };
    render(StatusCode::OK, &page)
}

/// `POST /signup`: only from this site's own form; errors are shown next to their field.
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignupForm>,
) -> Result<HttpResponse, PageError> {
    same_origin(&state, &req)?;
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref())?;
    let attempt = async {
        if !state.local_accounts {
            return Err(ApiError::Forbidden(
                "local accounts are disabled here".into(),
            ));
        }
        limit(&state, &req, "signup")?;
        let request = SignupRequest {
            email: form.email.clone(),
            password: form.password,
            name: form.name.clone(),
        };
        create_account(&state, request).await
    };
    match attempt.await {
        Ok(user) => signed_in(&state, user.id, &next).await,
        Err(err) => {
            let status = actix_web::ResponseError::status_code(&err);
            let mut page = SignupPage {
                nav: Nav::anonymous(),
                name: form.name,
                email: form.email,
                next,
                errors: FieldErrors::new(),
                form_error: None,
            };
            match &err {
                ApiError::BadRequest {
                    details: Some(details),
                    message,
                } => {
                    let field = details["field"].as_str().unwrap_or_default();
                    let field = ["name", "email", "password"]
                        .into_iter()
                        .find(|f| *f == field);
                    match field {
                        Some(field) => {
                            let text = message
                                .split_once(": ")
                                .map_or(message.as_str(), |(_, m)| m);
                            page.errors.insert(field, text.to_owned());
                        }
                        None => page.form_error = Some(message.clone()),
                    }
                }
                ApiError::Conflict(message) => {
                    page.errors.insert("email", message.clone());
                }
                other => page.form_error = Some(other.to_string()),
            }
            render(status, &page)
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let signed_in = visitor.require(&req)?;
    signed_in.check_csrf(&state, &form.csrf_token)?;
    sessions::delete(&state.db, &signed_in.session).await?;
    let mut res = see_other("/");
    res.add_cookie(&session_cookie(&state, None))
        .map_err(|e| PageError::Internal(Box::new(e)))?;
    Ok(res)
}
