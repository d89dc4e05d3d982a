//! `GET /`: the public landing page.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::pages::{Nav, PageError, Visitor, render};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    nav: Nav,
}

pub async fn landing(
    state: actix_web::web::Data<AppState>,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    let nav = match &visitor.0 {
        Some(signed_in) => signed_in.nav(&state, None).await?,
        None => Nav::anonymous(),
    };
    render(StatusCode::OK, &Landing { nav })
}
