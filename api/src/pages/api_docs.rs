//! `GET /api/docs`: the API reference, rendered from the generated OpenAPI document.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{RefOr, Required};

use crate::openapi::ApiDoc;
use crate::pages::{Nav, PageError, render};

pub struct Param {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub description: String,
}

pub struct Endpoint {
    pub method: &'static str,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<Param>,
    pub body: Option<String>,
    pub responses: Vec<(String, String)>,
    pub anchor: String,
}

pub struct Section {
    pub tag: String,
    pub description: String,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocsPage {
    nav: Nav,
    title: String,
    description: String,
    sections: Vec<Section>,
}

fn schema_name(content: Option<&RefOr<utoipa::openapi::Content>>) -> Option<String> {
    let RefOr::T(content) = content? else {
        return None;
    };
    match &content.schema {
        Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().map(str::to_owned),
        Some(RefOr::T(_)) => Some("JSON object".to_owned()),
        None => None,
    }
}

fn endpoint(method: &'static str, path: &str, op: &Operation) -> Endpoint {
    let params = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(p),
            RefOr::Ref(_) => None,
        })
        .map(|p| Param {
            name: p.name.clone(),
            location: match p.parameter_in {
                ParameterIn::Path => "path",
                ParameterIn::Query | ParameterIn::QueryString => "query",
                ParameterIn::Header => "header",
                ParameterIn::Cookie => "cookie",
            }
            .to_owned(),
            required: matches!(p.required, Required::True),
            description: p.description.clone().unwrap_or_default(),
        })
        .collect();
    let body = match &op.request_body {
        Some(RefOr::T(b)) => schema_name(b.content.get("application/json")),
        _ => None,
    };
    let responses = op
        .responses
        .responses
        .iter()
        .map(|(code, r)| {
            let text = match r {
                RefOr::T(resp) => {
                    let body = schema_name(resp.content.get("application/json"));
                    match body {
                        Some(body) => format!("{} — {body}", resp.description),
                        None => resp.description.clone(),
                    }
                }
                RefOr::Ref(r) => r.ref_location.clone(),
            };
            (code.clone(), text)
        })
        .collect();
    Endpoint {
        method,
        path: path.to_owned(),
        summary: op.summary.clone().unwrap_or_default(),
        description: op.description.clone().unwrap_or_default(),
        params,
        body,
        responses,
        anchor: format!(
            "{}-{}",
            method.to_lowercase(),
            path.replace(['/', '{', '}', '.'], "-")
        ),
    }
}

/// The reference page, one section per tag.
pub async fn api_docs() -> Result<HttpResponse, PageError> {
    let doc = ApiDoc::openapi();
    let mut sections: Vec<Section> = doc
        .tags
        .iter()
        .flatten()
        .map(|t| Section {
            tag: t.name.clone(),
            description: t.description.clone().unwrap_or_default(),
            endpoints: Vec::new(),
        })
        .collect();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default();
            if let Some(section) = sections.iter_mut().find(|s| s.tag == tag) {
                section.endpoints.push(endpoint(method, path, op));
            }
        }
    }
    let page = ApiDocsPage {
        nav: Nav::anonymous(),
        title: doc.info.title.clone(),
        description: doc.info.description.clone().unwrap_or_default(),
        sections,
    };
    render(StatusCode::OK, &page)
}
