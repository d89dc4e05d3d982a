//! Server-rendered pages (askama templates from `frontend/templates`). They work without
//! JavaScript: forms post with a `csrf_token` field and redirect after success.

use std::collections::HashMap;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use sluice_core::crypto::constant_time_eq;
use sluice_core::entities::user;
use sluice_core::store::{PageRequest, orgs, sessions};
use sluice_core::tenancy::{Principal, TenantScope};

use crate::auth::{SESSION_COOKIE, csrf_token};
use crate::state::AppState;

pub mod account;
pub mod api_docs;
pub mod landing;
pub mod oauth_pages;
pub mod org_pages;
pub mod project_pages;
pub mod run_pages;
pub mod token_pages;

/// `?next=` on pages that return somewhere after signing in.
#[derive(serde::Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// Field name → message, shown next to the field.
pub type FieldErrors = HashMap<&'static str, String>;

/// An org in the switcher.
pub struct NavOrg {
    pub slug: String,
    pub name: String,
}

/// What the layout shows around every page.
#[derive(Default)]
pub struct Nav {
    pub version: &'static str,
    pub user: Option<String>,
    pub csrf: Option<String>,
    pub orgs: Vec<NavOrg>,
    pub current_org: Option<String>,
    pub notices: Vec<String>,
}

impl Nav {
    /// The layout for a signed-out visitor.
    pub fn anonymous() -> Nav {
        Nav {
            version: env!("CARGO_PKG_VERSION"),
            ..Nav::default()
        }
    }
}

/// A page failure, rendered as an HTML page (or a redirect to sign in).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignIn { next: String },
    #[error("Page not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Something went wrong")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sluice_core::Error> for PageError {
    fn from(err: sluice_core::Error) -> Self {
        use sluice_core::Error as E;
        match err {
            E::NotFound => PageError::NotFound,
            E::Forbidden(m) => PageError::Forbidden(m),
            E::Conflict(m) => PageError::BadRequest(m),
            E::Invalid { field, message } => PageError::BadRequest(format!("{field}: {message}")),
            other => PageError::Internal(Box::new(other)),
        }
    }
}

impl From<sea_orm::DbErr> for PageError {
    fn from(err: sea_orm::DbErr) -> Self {
        PageError::Internal(Box::new(err))
    }
}

impl From<askama::Error> for PageError {
    fn from(err: askama::Error) -> Self {
        PageError::Internal(Box::new(err))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Nav,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn { .. } => StatusCode::SEE_OTHER,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if let PageError::SignIn { next } = self {
            return see_other(&format!("/login?next={}", urlencode(next)));
        }
        if let PageError::Internal(source) = self {
            tracing::error!(error = %source, "page failed");
        }
        let title = match self {
            PageError::NotFound => "Page not found",
            PageError::Forbidden(_) => "Not allowed",
            PageError::BadRequest(_) => "That did not work",
            _ => "Something went wrong",
        };
        let message = match self {
            PageError::NotFound => {
                "There is nothing here, or it belongs to an organisation you are not in.".to_owned()
            }
            PageError::Internal(_) => "The error was logged. Please try again.".to_owned(),
            other => other.to_string(),
        };
        let page = ErrorPage {
            nav: Nav::anonymous(),
            title,
            message: &message,
        };
        let html = page.render().unwrap_or_else(|_| title.to_owned());
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(html)
    }
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A 303 redirect (Post/Redirect/Get).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// Renders a template with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, PageError> {
    let html = template.render()?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// Only same-site relative paths are followed after sign-in.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/orgs".to_owned(),
    }
}

/// The signed-in person of a page request, if any (session cookie only).
pub struct Visitor(pub Option<SignedIn>);

/// A signed-in person with their raw session id.
pub struct SignedIn {
    pub user: user::Model,
    pub session: String,
}

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Visitor, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let cookie = req
            .cookie(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty());
        Box::pin(async move {
            let state =
                state.ok_or_else(|| PageError::Internal("application state missing".into()))?;
            let Some(raw) = cookie else {
                return Ok(Visitor(None));
            };
            let user = sessions::authenticate(&state.db, &raw, Utc::now()).await?;
            Ok(Visitor(user.map(|user| SignedIn { user, session: raw })))
        })
    }
}

impl Visitor {
    /// The signed-in person, or a redirect to sign in that comes back here.
    pub fn require(self, req: &HttpRequest) -> Result<SignedIn, PageError> {
        self.0.ok_or_else(|| PageError::SignIn {
            next: req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "/".into()),
        })
    }
}

impl SignedIn {
    /// Checks a form's CSRF token against this session.
    pub fn check_csrf(&self, state: &AppState, given: &str) -> Result<(), PageError> {
        if constant_time_eq(given, &csrf_token(&state.keys, &self.session)) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "This form expired or came from another site. Reload the page and try again."
                    .into(),
            ))
        }
    }

    /// The org `slug` as this person sees it (404 when not theirs).
    pub async fn scope(&self, state: &AppState, slug: &str) -> Result<TenantScope, PageError> {
        Ok(TenantScope::resolve(&state.db, &Principal::User(self.user.clone()), slug).await?)
    }

    /// The org of a form post: resolved first (another org's answers 404), then the form's
    /// CSRF field checked.
    pub async fn form_scope(
        &self,
        state: &AppState,
        slug: &str,
        csrf: &str,
    ) -> Result<TenantScope, PageError> {
        let scope = self.scope(state, slug).await?;
        self.check_csrf(state, csrf)?;
        Ok(scope)
    }

    /// The layout for this person, with `current_org` selected in the switcher.
    pub async fn nav(&self, state: &AppState, current_org: Option<&str>) -> Result<Nav, PageError> {
        let page = PageRequest {
            limit: Some(200),
            cursor: None,
        };
        let orgs =
            orgs::list_for_principal(&state.db, &Principal::User(self.user.clone()), &page).await?;
        Ok(Nav {
            version: env!("CARGO_PKG_VERSION"),
            user: Some(self.user.name.clone()),
            csrf: Some(csrf_token(&state.keys, &self.session)),
            orgs: orgs
                .items
                .into_iter()
                .map(|(o, _)| NavOrg {
                    slug: o.slug,
                    name: o.name,
                })
                .collect(),
            current_org: current_org.map(str::to_owned),
            notices: Vec::new(),
        })
    }
}

/// Turns a core validation error into a field error, or passes other errors on.
pub fn field_error(err: sluice_core::Error, errors: &mut FieldErrors) -> Result<(), PageError> {
    match err {
        sluice_core::Error::Invalid { field, message } => {
            errors.insert(field, message);
            Ok(())
        }
        sluice_core::Error::Conflict(message) => {
            errors.insert("slug", message);
            Ok(())
        }
        other => Err(other.into()),
    }
}
