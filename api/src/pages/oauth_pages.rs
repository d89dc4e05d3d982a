//! `GET /auth/oauth/{provider}/start` and `/callback`: the browser side of OAuth sign-in.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use sluice_core::db::begin_write;
use sluice_core::store::users;

use crate::oauth::{FLOW_COOKIE, FLOW_LIFETIME, FlowError};
use crate::pages::account::{login_page, signed_in};
use crate::pages::{NextQuery, PageError, render, safe_next};
use crate::routes::base_url;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn callback_url(state: &AppState, req: &HttpRequest, provider: &str) -> String {
    format!("{}/auth/oauth/{provider}/callback", base_url(state, req))
}

fn flow_cookie(state: &AppState, value: Option<String>) -> Cookie<'static> {
    let mut cookie = Cookie::build(FLOW_COOKIE, value.clone().unwrap_or_default())
        .path("/auth/oauth")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .finish();
    match value {
        Some(_) => cookie.set_max_age(actix_web::cookie::time::Duration::seconds(
            FLOW_LIFETIME.num_seconds(),
        )),
        None => cookie.make_removal(),
    }
    cookie
}

/// Shows the sign-in page with what went wrong.
fn failed(
    state: &AppState,
    status: StatusCode,
    message: String,
) -> Result<HttpResponse, PageError> {
    let mut res = render(
        status,
        &login_page(state, String::new(), "/".into(), Some(message)),
    )?;
    res.add_cookie(&flow_cookie(state, None))
        .map_err(|e| PageError::Internal(Box::new(e)))?;
    Ok(res)
}

/// Sends the browser to the provider with a fresh state, nonce and PKCE challenge.
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    let provider = state.oauth.get(&path).ok_or(PageError::NotFound)?;
    let next = safe_next(query.next.as_deref())?;
    let redirect = callback_url(&state, &req, &provider.name);
    match state
        .oauth
        .start(&state.keys, provider, &redirect, &next)
        .await
    {
        Ok((url, sealed)) => {
            let mut res = HttpResponse::Found()
                .insert_header((header::LOCATION, url))
                .finish();
            res.add_cookie(&flow_cookie(&state, Some(sealed)))
                .map_err(|e| PageError::Internal(Box::new(e)))?;
            Ok(res)
        }
        Err(err) => failed(&state, StatusCode::BAD_GATEWAY, err.to_string()),
    }
}

/// Finishes the flow: verifies state, code and ID token, then signs the person in — creating
/// the account on first sign-in, or linking it to an account with the same verified email.
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, PageError> {
    let provider = state.oauth.get(&path).ok_or(PageError::NotFound)?;
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or(error);
        return failed(
            &state,
            StatusCode::BAD_REQUEST,
            format!("{} did not sign you in: {detail}", provider.label),
        );
    }
    let (Some(code), Some(flow_state)) = (&query.code, &query.state) else {
        return failed(
            &state,
            StatusCode::BAD_REQUEST,
            FlowError::Expired.to_string(),
        );
    };
    let cookie = req.cookie(FLOW_COOKIE).map(|c| c.value().to_owned());
    let redirect = callback_url(&state, &req, &provider.name);
    let (identity, next) = match state
        .oauth
        .finish(
            &state.keys,
            provider,
            &redirect,
            cookie.as_deref(),
            code,
            flow_state,
        )
        .await
    {
        Ok(done) => done,
        Err(err @ FlowError::Expired) => {
            return failed(&state, StatusCode::BAD_REQUEST, err.to_string());
        }
        Err(err) => return failed(&state, StatusCode::BAD_GATEWAY, err.to_string()),
    };
    let txn = begin_write(&state.db).await?;
    let user = match users::sign_in_with_identity(&txn, &identity).await {
        Ok(user) => user,
        Err(sluice_core::Error::Conflict(message)) => {
            return failed(&state, StatusCode::CONFLICT, message);
        }
        Err(sluice_core::Error::Invalid { message, .. }) => {
            return failed(&state, StatusCode::BAD_REQUEST, message);
        }
        Err(other) => return Err(other.into()),
    };
    txn.commit().await?;
    tracing::info!(user = user.id, provider = %provider.name, "signed in with a provider");
    let mut res = signed_in(&state, user.id, &safe_next(Some(&next))?).await?;
    res.add_cookie(&flow_cookie(&state, None))
        .map_err(|e| PageError::Internal(Box::new(e)))?;
    Ok(res)
}
