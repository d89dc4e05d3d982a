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
pub mod dashboard;
pub mod error_pages;
pub mod flash;
pub mod invitation_pages;
pub mod landing;
pub mod lint_page;
pub mod oauth_pages;
pub mod org_pages;
pub mod project_pages;
pub mod project_runs;
pub mod project_settings;
pub mod release_pages;
pub(crate) mod routes;
pub mod run_form;
pub mod run_forms;
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
        // The layout is the signed-out one here; `error_pages::html_errors` renders it again
        // with the visitor's own header when they are signed in.
        error_page(
            self.status_code(),
            self.title(),
            &self.message(),
            Nav::anonymous(),
        )
    }
}

impl PageError {
    pub fn title(&self) -> &'static str {
        match self {
            PageError::NotFound => "Page not found",
            PageError::Forbidden(_) => "Not allowed",
            PageError::BadRequest(_) => "That did not work",
            _ => "Something went wrong",
        }
    }

    pub fn message(&self) -> String {
        match self {
            PageError::NotFound => {
                "There is nothing here, or it belongs to an organisation you are not in.".to_owned()
            }
            PageError::Internal(_) => "The error was logged. Please try again.".to_owned(),
            other => other.to_string(),
        }
    }
}

/// An HTML error page with `status`.
pub fn error_page(status: StatusCode, title: &str, message: &str, nav: Nav) -> HttpResponse {
    let page = ErrorPage {
        nav,
        title,
        message,
    };
    let html = page.render().unwrap_or_else(|_| title.to_owned());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html)
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

/// Where to go after signing in: `next` when it is a path on this site, the dashboard (`/`)
/// when there is none. Anything else is refused rather than followed: browsers drop tabs and newlines from
/// URLs and read `\\` as `/`, so `/\t/evil.example` would leave the site.
pub fn safe_next(next: Option<&str>) -> Result<String, PageError> {
    let next = match next {
        None | Some("") => return Ok("/".to_owned()),
        Some(next) => next,
    };
    let path_here = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if path_here {
        Ok(next.to_owned())
    } else {
        Err(PageError::BadRequest(
            "`next` must be a path on this site, such as /orgs".into(),
        ))
    }
}

/// Refuses a form posted from another site. Sign-in and sign-up have no session to bind a
/// CSRF token to, so this is their defence against login CSRF (signing a victim in as the
/// attacker): `Sec-Fetch-Site` when the browser sends it, else `Origin` against this site's
/// origin (the public URL, or the address the request came to). Requests with neither are
/// not from a browser form and pass.
pub fn same_origin(state: &AppState, req: &HttpRequest) -> Result<(), PageError> {
    let get = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let allowed = match (get("sec-fetch-site"), get(header::ORIGIN.as_str())) {
        (Some(site), _) => matches!(site, "same-origin" | "none"),
        (None, Some(origin)) => {
            let info = req.connection_info();
            let here = format!("{}://{}", info.scheme(), info.host());
            let public = state.public_url.as_deref().map(origin_of);
            origin.eq_ignore_ascii_case(&here)
                || public.is_some_and(|p| origin.eq_ignore_ascii_case(p))
        }
        (None, None) => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "This form came from another site. Open this site's own page and try again.".into(),
        ))
    }
}

/// `scheme://host[:port]` of a URL, as a browser's `Origin` spells it (no default port).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let origin = &url[..end];
    let default_port = if origin.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    origin.strip_suffix(default_port).unwrap_or(origin)
}

/// The signed-in person of a page request, if any (session cookie only).
pub struct Visitor(pub Option<SignedIn>);

/// A signed-in person with their raw session id.
pub struct SignedIn {
    pub user: user::Model,
    pub session: String,
    /// A notice left by the form that redirected here.
    pub notice: Option<String>,
}

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Visitor, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let notice = flash::notice(req);
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
            Ok(Visitor(user.map(|user| SignedIn {
                user,
                session: raw,
                notice,
            })))
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
            notices: self.notice.iter().cloned().collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_path_on_this_site() {
        assert_eq!(safe_next(None).ok().as_deref(), Some("/"));
        assert_eq!(safe_next(Some("")).ok().as_deref(), Some("/"));
        assert_eq!(
            safe_next(Some("/orgs/acme/projects?x=1")).ok().as_deref(),
            Some("/orgs/acme/projects?x=1")
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/\u{7f}",
            "https://evil.example/",
            "evil.example",
            " /orgs",
        ] {
            assert!(safe_next(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origins_drop_paths_and_default_ports() {
        assert_eq!(
            origin_of("https://ci.example.com"),
            "https://ci.example.com"
        );
        assert_eq!(
            origin_of("https://ci.example.com:443/sluice"),
            "https://ci.example.com"
        );
        assert_eq!(
            origin_of("http://ci.example.com:8080/x"),
            "http://ci.example.com:8080"
        );
        assert_eq!(
            origin_of("http://ci.example.com:80"),
            "http://ci.example.com"
        );
    }
}
