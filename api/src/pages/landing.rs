//! `GET /`: the public landing page, or a signed-in person's dashboard.

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
    match &visitor.0 {
        Some(signed_in) => crate::pages::dashboard::dashboard(&state, signed_in).await,
        None => render(
            StatusCode::OK,
            &Landing {
                nav: Nav::anonymous(),
            },
        ),
    }
}
