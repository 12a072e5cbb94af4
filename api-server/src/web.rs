//! The web app: one HTML page and its scripts and style, compiled into the binary so the
//! all-in-one mode and the container image need no network and no CDN.
//!
//! The app is plain ES modules with no build step (see `web/README.md`). Every asset is served
//! under `/assets/<version>/`, where the version is a digest of all of them, so browsers may cache
//! an asset for a year and a new binary is never mixed with an old script. Pages and assets carry
//! a strict content security policy: scripts, styles and connections from this origin only, no
//! inline script or style, no `eval`; images from this origin or the `blob:` URLs of receipts the
//! app fetched with its token.

use std::net::IpAddr;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::auth::browser::{Cookies, Peer, cookie, over_tls, peer};
use crate::auth::tokens::CsrfBinding;
use crate::state::AppState;

/// The policy of the app's page and assets.
pub const APP_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// One file of the app, by its path under `web/`.
macro_rules! asset {
    ($name:literal) => {
        ($name, include_bytes!(concat!("../web/", $name)) as &[u8])
    };
}

/// The app's files: name and contents.
const ASSETS: &[(&str, &[u8])] = &[
    asset!("app.css"),
    asset!("icon.svg"),
    asset!("main.js"),
    asset!("api.js"),
    asset!("dom.js"),
    asset!("charts.js"),
    asset!("pages/auth.js"),
    asset!("pages/upload.js"),
    asset!("pages/receipts.js"),
    asset!("pages/receipt.js"),
    asset!("pages/insights.js"),
    asset!("pages/settings.js"),
    asset!("pages/admin.js"),
];

/// The media type of an asset, by its extension.
fn media_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/javascript; charset=utf-8",
    }
}

const INDEX: &str = include_str!("../web/index.html");

/// The digest of every asset: part of their URLs.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for (name, bytes) in ASSETS {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    hex::encode(&hasher.finalize()[..6])
});

static PAGE: LazyLock<String> = LazyLock::new(|| INDEX.replace("{{version}}", &VERSION));

/// The client-side routes, each answered with the app's page.
pub const PAGES: &[&str] =
    &["/login", "/register", "/upload", "/receipts", "/receipts/{id}", "/insights", "/settings", "/admin"];

/// Whether a request prefers HTML to JSON: a browser navigating, not an API client.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()) else { return false };
    let quality = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let kind = pieces.next()?.trim();
                let q = pieces
                    .filter_map(|parameter| parameter.trim().strip_prefix("q="))
                    .find_map(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (kind == wanted).then_some(q)
            })
            .fold(0.0f32, f32::max)
    };
    let html = quality("text/html");
    html > 0.0 && html >= quality("application/json")
}

fn app_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(APP_CONTENT_SECURITY_POLICY));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=(), payment=(), usb=()"),
    );
}

/// The app's page, with an unbound CSRF cookie when the browser has none this server signed.
fn page(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Response {
    let mut response = PAGE.as_str().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    app_headers(&mut response);
    let cookies = Cookies { secure: over_tls(state, headers, peer) };
    if cookie(headers, cookies.csrf()).and_then(|token| state.tokens.csrf_binding(token)).is_none() {
        cookies.set_csrf(&mut response, &state.tokens.csrf_token(CsrfBinding::Anonymous), None);
    }
    response
}

/// The app's page, as a route.
pub async fn page_route(State(state): State<AppState>, connect: Option<Peer>, headers: HeaderMap) -> Response {
    page(&state, &headers, peer(connect))
}

async fn asset(Path((version, name)): Path<(String, String)>) -> Response {
    let Some((_, bytes)) = ASSETS.iter().find(|(file, _)| *file == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type(&name)));
    // An old page asking for its own version gets today's file, but must not keep it.
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    app_headers(&mut response);
    response
}

/// The app's routes (the page at `/` is answered by the root route, by content negotiation).
pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/assets/{version}/{*name}", get(asset));
    for path in PAGES {
        router = router.route(path, get(page_route));
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        assert!(prefers_html(&accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("application/json, text/html;q=0.5")));
        assert!(!prefers_html(&HeaderMap::new()));
    }

    #[test]
    fn the_page_names_its_assets_by_version() {
        assert!(!PAGE.contains("{{version}}"));
        assert!(PAGE.contains(&format!("/assets/{}/main.js", *VERSION)));
        for (name, _) in ASSETS {
            assert!(!name.contains(".."), "{name}");
        }
        assert_eq!(media_type("pages/auth.js"), "text/javascript; charset=utf-8");
        assert_eq!(media_type("app.css"), "text/css; charset=utf-8");
        assert_eq!(media_type("icon.svg"), "image/svg+xml");
    }
}
