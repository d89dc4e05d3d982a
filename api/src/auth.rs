//! Turning credentials into a [`Principal`]: API tokens (Bearer, or HTTP Basic
//! `email:token`), or a session cookie plus `X-CSRF-Token` on unsafe methods.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use sluice_core::crypto::{Keyring, constant_time_eq, hash_token};
use sluice_core::store::{sessions, tokens};
use sluice_core::tenancy::{Principal, Role, TenantScope};

use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sluice_session";
/// Header carrying the CSRF token on unsafe cookie-authenticated requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of a session: a MAC of its id, so nothing more needs storing.
pub fn csrf_token(keys: &Keyring, raw_session: &str) -> String {
    keys.mac_hex(&format!("csrf:{raw_session}"))
}

/// The session cookie for `raw` (or an expired one to sign out when `raw` is None).
pub fn session_cookie(state: &AppState, raw: Option<&str>) -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, raw.unwrap_or_default().to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .finish();
    match raw {
        Some(_) => cookie.set_max_age(actix_web::cookie::time::Duration::seconds(
            sessions::ABSOLUTE_TIMEOUT.num_seconds(),
        )),
        None => cookie.make_removal(),
    }
    cookie
}

/// An authenticated caller. `session` holds the raw session id when the cookie was used.
pub struct Authn {
    pub principal: Principal,
    pub session: Option<String>,
}

impl Authn {
    /// The org `slug` as this caller sees it; 404 when it is not theirs.
    pub async fn scope(&self, state: &AppState, slug: &str) -> Result<TenantScope, ApiError> {
        let key = (
            self.principal.user().id,
            self.principal.token_id(),
            slug.to_owned(),
        );
        if let Some(scope) = state.cache.scope(&key) {
            return Ok(scope);
        }
        let generation = state.cache.generation();
        let scope = TenantScope::resolve(&state.db, &self.principal, slug).await?;
        state.cache.put_scope(key, generation, scope.clone());
        Ok(scope)
    }

    /// Fails unless the caller may write at all: a person may, a token only with the `write`
    /// or `admin` scope. For writes that a role alone does not guard (a gate's `submitter`
    /// may name a viewer), so a `read` token never writes as its creator.
    pub fn require_write_scope(&self) -> Result<(), ApiError> {
        if self.principal.ceiling() >= Role::Developer {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "a token with only the read scope cannot write; this needs the write scope".into(),
            ))
        }
    }
}

impl FromRequest for Authn {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Authn, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let authorization = header_str(req, header::AUTHORIZATION.as_str());
        let csrf = header_str(req, CSRF_HEADER);
        let cookie = req
            .cookie(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty());
        let needs_csrf = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let now = Utc::now();
            if let Some(value) = authorization {
                let (token, email) = parse_authorization(&value).ok_or(ApiError::Unauthorized)?;
                let key = cache_key(&token, email.as_deref());
                if let Some(principal) = state.cache.principal(&key).filter(|p| !expired(p, now)) {
                    return Ok(Authn {
                        principal,
                        session: None,
                    });
                }
                let generation = state.cache.generation();
                let principal = tokens::authenticate(&state.db, &token, email.as_deref(), now)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                state
                    .cache
                    .put_principal(key, generation, principal.clone());
                return Ok(Authn {
                    principal,
                    session: None,
                });
            }
            let raw = cookie.ok_or(ApiError::Unauthorized)?;
            let user = sessions::authenticate(&state.db, &raw, now)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            if needs_csrf {
                let expected = csrf_token(&state.keys, &raw);
                if !csrf.is_some_and(|given| constant_time_eq(&given, &expected)) {
                    return Err(ApiError::Csrf);
                }
            }
            Ok(Authn {
                principal: Principal::User(user),
                session: Some(raw),
            })
        })
    }
}

/// The read-cache key of a token credential. Bearer and Basic never share one: a Bearer
/// token proves nothing about a Basic header with the same token and another (or no) email.
fn cache_key(token: &str, basic_email: Option<&str>) -> String {
    match basic_email {
        None => format!("bearer:{}", hash_token(token)),
        Some(email) => format!("basic:{}:{email}", hash_token(token)),
    }
}

/// Whether a cached token principal has expired since it was cached.
fn expired(principal: &Principal, now: chrono::DateTime<Utc>) -> bool {
    match principal {
        Principal::Token { token, .. } => token.expires_at.is_some_and(|at| now >= at),
        Principal::User(_) => true,
    }
}

fn header_str(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Bearer <token>` or `Basic base64(email:token)` → (token, email).
fn parse_authorization(value: &str) -> Option<(String, Option<String>)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((rest.trim().to_owned(), None));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (email, token) = text.split_once(':')?;
        // No account has an empty email: refused here, whatever any cache holds.
        if email.is_empty() {
            return None;
        }
        return Some((token.to_owned(), Some(email.to_owned())));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_parse() {
        assert_eq!(
            parse_authorization("Bearer slc_abc"),
            Some(("slc_abc".into(), None))
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("a@b.c:slc_xyz");
        assert_eq!(
            parse_authorization(&format!("Basic {basic}")),
            Some(("slc_xyz".into(), Some("a@b.c".into())))
        );
        let no_email = base64::engine::general_purpose::STANDARD.encode(":slc_xyz");
        assert_eq!(parse_authorization(&format!("Basic {no_email}")), None);
        assert_ne!(cache_key("slc_xyz", None), cache_key("slc_xyz", Some("")));
        assert_eq!(parse_authorization("Digest x"), None);
        assert_eq!(parse_authorization("Basic !!!"), None);
    }
}
