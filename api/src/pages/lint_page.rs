//! `/lint`: paste a Jenkinsfile, see what `sluice lint` says, each diagnostic with its line
//! and a caret under the column at fault.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_core::pipeline::{self, Severity};

use crate::pages::{Nav, PageError, Visitor, render};
use crate::state::AppState;

/// Largest Jenkinsfile the page checks, in bytes.
const MAX_SOURCE: usize = 1024 * 1024;

#[derive(Deserialize)]
pub struct LintForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    source: String,
}

/// One diagnostic as the page shows it.
pub struct Shown {
    pub line: u32,
    pub col: u32,
    pub error: bool,
    pub message: String,
    /// The source line and a caret under the column (None past the end of the file).
    pub excerpt: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "lint.html")]
struct LintPage {
    nav: Nav,
    source: String,
    checked: bool,
    valid: bool,
    errors: usize,
    diagnostics: Vec<Shown>,
}

/// `GET /lint`.
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    let page = LintPage {
        nav: who.nav(&state, None).await?,
        source: String::new(),
        checked: false,
        valid: false,
        errors: 0,
        diagnostics: Vec::new(),
    };
    render(StatusCode::OK, &page)
}

/// `POST /lint`: the same page with the diagnostics.
pub async fn check(
    state: web::Data<AppState>,
    req: HttpRequest,
    visitor: Visitor,
    form: web::Form<LintForm>,
) -> Result<HttpResponse, PageError> {
    let who = visitor.require(&req)?;
    who.check_csrf(&state, &form.csrf_token)?;
    let source = form.into_inner().source.replace("\r\n", "\n");
    if source.len() > MAX_SOURCE {
        return Err(PageError::BadRequest(format!(
            "The Jenkinsfile is larger than {} KiB.",
            MAX_SOURCE / 1024
        )));
    }
    let result = pipeline::lint(&source);
    let lines: Vec<&str> = source.lines().collect();
    let diagnostics: Vec<Shown> = result
        .diagnostics
        .iter()
        .map(|d| Shown {
            line: d.pos.line,
            col: d.pos.col,
            error: d.severity == Severity::Error,
            message: d.message.clone(),
            excerpt: lines
                .get(d.pos.line.saturating_sub(1) as usize)
                .map(|text| {
                    let caret: String = text
                        .chars()
                        .take(d.pos.col.saturating_sub(1) as usize)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .chain(std::iter::once('^'))
                        .collect();
                    (text.to_string(), caret)
                }),
        })
        .collect();
    let page = LintPage {
        nav: who.nav(&state, None).await?,
        valid: result.is_valid(),
        errors: diagnostics.iter().filter(|d| d.error).count(),
        checked: true,
        diagnostics,
        source,
    };
    render(StatusCode::OK, &page)
}
