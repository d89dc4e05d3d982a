//! Local accounts: `POST /auth/signup`, `/auth/login`, `/auth/logout`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use sluice_core::crypto::{hash_password, verify_password};
use sluice_core::entities::user;
use sluice_core::store::{sessions, users};
use sluice_core::validate;

use crate::auth::{Authn, csrf_token, session_cookie};
use crate::error::ApiError;
use crate::state::AppState;

/// A hash verified when the email is unknown, so that a miss takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not the password of anyone").unwrap_or_default())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignupRequest {
    #[schema(format = "email", example = "ada@example.com")]
    pub email: String,
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    #[schema(min_length = 1, max_length = 200, example = "Ada Lovelace")]
    pub name: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A person as shown to themselves.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
}

impl From<&user::Model> for UserView {
    fn from(u: &user::Model) -> Self {
        UserView {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct SessionView {
    user: UserView,
    csrf_token: String,
}

/// Counts an attempt against the per-address limit.
pub fn limit(state: &AppState, req: &HttpRequest, action: &str) -> Result<(), ApiError> {
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    state
        .auth_limiter
        .check(&format!("{action}:{peer}"))
        .map_err(|retry_after| ApiError::RateLimited { retry_after })
}

fn local_accounts_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.local_accounts {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "local accounts are disabled here; sign in with a provider".into(),
        ))
    }
}

/// Starts a session and answers with the user, the CSRF token and the cookie.
pub async fn start_session(
    state: &AppState,
    user: &user::Model,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, ApiError> {
    let raw = sessions::create(&state.db, user.id).await?;
    Ok(HttpResponse::build(status)
        .cookie(session_cookie(state, Some(&raw)))
        .json(SessionView {
            user: user.into(),
            csrf_token: csrf_token(&state.keys, &raw),
        }))
}

/// Runs CPU-heavy password work off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))
}

/// Creates a local account and signs it in; validation happens before any write.
pub async fn create_account(
    state: &AppState,
    body: SignupRequest,
) -> Result<user::Model, ApiError> {
    let email = validate::email(&body.email)?;
    let name = validate::name("name", &body.name)?;
    validate::password(&body.password)?;
    if users::find_by_email(&state.db, &email).await?.is_some() {
        return Err(ApiError::Conflict(
            "an account with this email already exists".into(),
        ));
    }
    let password = body.password;
    let hash = blocking(move || hash_password(&password)).await??;
    Ok(users::create(&state.db, &email, &name, Some(hash), false).await?)
}

/// Checks an email and password; `Unauthorized` for a wrong pair either way.
pub async fn check_password(state: &AppState, body: LoginRequest) -> Result<user::Model, ApiError> {
    // An address that could not have signed up cannot sign in (and never reaches the database).
    let email = validate::email(&body.email).map_err(|_| ApiError::BadCredentials)?;
    let user = users::find_by_email(&state.db, &email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = body.password;
    let ok = blocking(move || {
        verify_password(&password, hash.as_deref().unwrap_or_else(|| dummy_hash()))
    })
    .await?;
    match user {
        Some(user) if ok && user.password_hash.is_some() => Ok(user),
        _ => Err(ApiError::BadCredentials),
    }
}

/// `POST /auth/signup`.
#[utoipa::path(post, path = "/auth/signup", tag = "accounts", request_body = SignupRequest, responses((status = 201, description = "Account created and signed in", body = SessionView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody), (status = 429, description = "Too many attempts", body = crate::openapi::ErrorBody)))]
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    local_accounts_enabled(&state)?;
    limit(&state, &req, "signup")?;
    let user = create_account(&state, body.into_inner()).await?;
    tracing::info!(user = user.id, "account created");
    start_session(&state, &user, actix_web::http::StatusCode::CREATED).await
}

/// `POST /auth/login`.
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LoginRequest, responses((status = 200, description = "Signed in", body = SessionView), (status = 400, description = "Bad input; `details.field` names the field", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::openapi::ErrorBody), (status = 429, description = "Too many attempts", body = crate::openapi::ErrorBody)))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    local_accounts_enabled(&state)?;
    limit(&state, &req, "login")?;
    let user = check_password(&state, body.into_inner()).await?;
    start_session(&state, &user, actix_web::http::StatusCode::OK).await
}

/// `POST /auth/logout`: ends the cookie session (tokens have nothing to end).
#[utoipa::path(post, path = "/auth/logout", tag = "accounts", security(("bearer" = []), ("session" = [])), responses((status = 204, description = "Signed out"), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 403, description = "Not allowed for this role, scope or CSRF token", body = crate::openapi::ErrorBody)))]
pub async fn logout(state: web::Data<AppState>, authn: Authn) -> Result<HttpResponse, ApiError> {
    if let Some(raw) = &authn.session {
        sessions::delete(&state.db, raw).await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie(&state, None))
        .finish())
}
