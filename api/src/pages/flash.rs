//! One-time notices after a form's redirect (Post/Redirect/Get): the redirect sets a short
//! cookie, the next page shows it (escaped like any text) and the response clears it.

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse};

/// The cookie carrying the notice to the page after a redirect.
pub const NOTICE_COOKIE: &str = "sluice_notice";

/// Longest notice kept, in bytes.
const MAX_NOTICE: usize = 600;

/// A 303 redirect to `to` that shows `notice` on the page it leads to.
pub fn see_other_notice(to: &str, notice: &str) -> HttpResponse {
    let text = sluice_core::store::runs::clip(notice, MAX_NOTICE);
    let cookie = Cookie::build(NOTICE_COOKIE, super::urlencode(&text))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(60))
        .finish();
    let mut res = super::see_other(to);
    if let Err(err) = res.add_cookie(&cookie) {
        tracing::warn!(error = %err, "setting a notice cookie failed");
    }
    res
}

/// The notice this request carries, if any.
pub fn notice(req: &HttpRequest) -> Option<String> {
    let raw = req.cookie(NOTICE_COOKIE)?;
    let text = urldecode(raw.value());
    (!text.trim().is_empty()).then_some(text)
}

fn urldecode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Clears the notice once a page has been rendered with it (a successful HTML response that
/// does not set a new one).
pub async fn clear_shown_notice(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let had_notice = req.cookie(NOTICE_COOKIE).is_some();
    let mut res = next.call(req).await?;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let sets_new = res.response().cookies().any(|c| c.name() == NOTICE_COOKIE);
    if had_notice && html && res.status().is_success() && !sets_new {
        let mut removal = Cookie::build(NOTICE_COOKIE, "").path("/").finish();
        removal.make_removal();
        if let Err(err) = res.response_mut().add_cookie(&removal) {
            tracing::warn!(error = %err, "clearing a notice cookie failed");
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_survive_the_cookie_round_trip() {
        let text = "Connected: main is at 1a2b3c4 — «ok» ; = % &";
        assert_eq!(urldecode(&super::super::urlencode(text)), text);
    }
}
