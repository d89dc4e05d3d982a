//! The API's one error type, rendered as `{"error": {"code", "message", "details"?}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::Value;

/// Every way a request can fail, each mapped to one status and error code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input; `details` names the field or position at fault.
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Option<Value>,
    },
    #[error("authentication required: send `Authorization: Bearer <token>` or sign in")]
    Unauthorized,
    /// A webhook delivery whose signature or token does not match the project's secret.
    #[error("{0}")]
    WebhookUnauthorized(String),
    #[error("wrong email or password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("missing or wrong X-CSRF-Token header for this session")]
    Csrf,
    #[error("too many attempts; try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{message}")]
    Unavailable {
        message: String,
        details: Option<Value>,
    },
    /// Anything unexpected: logged with its cause chain, answered without internals.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The stable, snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized | ApiError::WebhookUnauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Csrf => "csrf_failed",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Option<&Value> {
        match self {
            ApiError::BadRequest { details, .. } | ApiError::Unavailable { details, .. } => {
                details.as_ref()
            }
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::Internal(Box::new(err))
    }
}

impl From<sluice_core::Error> for ApiError {
    fn from(err: sluice_core::Error) -> Self {
        use sluice_core::Error as E;
        match err {
            E::NotFound => ApiError::NotFound,
            E::Forbidden(message) => ApiError::Forbidden(message),
            E::Conflict(message) => ApiError::Conflict(message),
            E::Invalid { field, message } => ApiError::BadRequest {
                message: format!("{field}: {message}"),
                details: Some(serde_json::json!({ "field": field })),
            },
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
}

/// Builds a response in the error shape of API.md.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: String,
    details: Option<&Value>,
) -> HttpResponse {
    let body = Body {
        error: Inner {
            code,
            message,
            details,
        },
    };
    HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(serde_json::to_string(&body).unwrap_or_else(|_| {
            String::from(r#"{"error":{"code":"internal_error","message":"internal error"}}"#)
        }))
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized
            | ApiError::WebhookUnauthorized(_)
            | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use actix_web::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
        if let ApiError::Internal(source) = self {
            tracing::error!(error.cause_chain = %CauseChain(source.as_ref()), "request failed");
        }
        let mut res = error_response(
            self.status_code(),
            self.code(),
            self.to_string(),
            self.details(),
        );
        match self {
            ApiError::Unauthorized => {
                res.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sluice\""),
                );
            }
            ApiError::RateLimited { retry_after } => {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        res
    }
}

/// Formats an error with every `source()` below it, one per line.
struct CauseChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for CauseChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut current = self.0.source();
        while let Some(cause) = current {
            write!(f, "\n  caused by: {cause}")?;
            current = cause.source();
        }
        Ok(())
    }
}

/// JSON extractor settings: the body limit, and errors in the API shape naming what is wrong.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req: &HttpRequest| json_error(err, limit).into())
}

fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge { limit },
        E::ContentType => ApiError::BadRequest {
            message: "expected a JSON body with Content-Type: application/json".into(),
            details: None,
        },
        E::Deserialize(err) => {
            let details = serde_json::json!({ "line": err.line(), "column": err.column() });
            let field = missing_or_unknown_field(&err.to_string());
            let details = match field {
                Some(field) => {
                    serde_json::json!({ "field": field, "line": err.line(), "column": err.column() })
                }
                None => details,
            };
            ApiError::BadRequest {
                message: format!("invalid JSON body: {err}"),
                details: Some(details),
            }
        }
        other => ApiError::BadRequest {
            message: format!("unreadable body: {other}"),
            details: None,
        },
    }
}

/// Extracts the field name from serde's "missing field `x`" / "unknown field `x`" messages.
fn missing_or_unknown_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::{App, test as actix_test};

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Signup {
        email: String,
    }

    async fn echo(_body: web::Json<Signup>) -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    async fn call(body: &'static str, content_type: &str) -> (StatusCode, Value) {
        let app = actix_test::init_service(
            App::new()
                .app_data(json_config(64))
                .route("/echo", web::post().to(echo)),
        )
        .await;
        let req = actix_test::TestRequest::post()
            .uri("/echo")
            .insert_header(("content-type", content_type))
            .set_payload(body)
            .to_request();
        let res = actix_test::call_service(&app, req).await;
        let status = res.status();
        (status, actix_test::read_body_json(res).await)
    }

    #[actix_web::test]
    async fn malformed_json_is_a_400_in_the_error_shape() {
        let (status, body) = call("{\"email\": ", "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid JSON")
        );
        assert_eq!(body["error"]["details"]["line"], 1);
    }

    #[actix_web::test]
    async fn missing_and_unknown_fields_are_named() {
        let (status, body) = call("{}", "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["details"]["field"], "email");
        let (_, body) = call(r#"{"email":"a@b","admin":true}"#, "application/json").await;
        assert_eq!(body["error"]["details"]["field"], "admin");
    }

    #[actix_web::test]
    async fn oversized_and_wrong_content_type_bodies_are_refused() {
        let big = Box::leak(format!("{{\"email\": \"{}\"}}", "x".repeat(100)).into_boxed_str());
        let (status, body) = call(big, "application/json").await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");
        let (status, body) = call(r#"{"email":"a"}"#, "text/plain").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Content-Type")
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::Internal("password=hunter2 in connection string".into());
        let res = err.error_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = actix_web::body::to_bytes(res.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("internal_error"), "{text}");
        assert_eq!(err.to_string(), "internal error");
    }
}
