//! `/docs`: interactive API documentation (Swagger UI) served from assets compiled into the
//! binary, so it works with no internet access. The page loads only its own script and style,
//! which the content security policy requires.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../assets/swagger-ui/index.html");
const INIT: &str = include_str!("../assets/swagger-ui/init.js");
const BUNDLE: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
const STYLE: &str = include_str!("../assets/swagger-ui/swagger-ui.css");

/// The policy of the docs pages: their own scripts, inline styles (which Swagger UI needs).
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(body: &'static str, content_type: &'static str, cacheable: bool) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = if cacheable { "public, max-age=86400" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // Swagger UI sets inline styles, so its pages get a policy of their own.
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CONTENT_SECURITY_POLICY));
    response
}

/// The documentation routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(|| async { asset(INDEX, "text/html; charset=utf-8", false) }))
        .route("/docs/init.js", get(|| async { asset(INIT, "text/javascript; charset=utf-8", false) }))
        .route("/docs/swagger-ui-bundle.js", get(|| async { asset(BUNDLE, "text/javascript; charset=utf-8", true) }))
        .route("/docs/swagger-ui.css", get(|| async { asset(STYLE, "text/css; charset=utf-8", true) }))
}
