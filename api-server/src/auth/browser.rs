//! `/api/auth/browser`: sign-in for the web app.
//!
//! The app keeps its access token in memory only; the refresh token lives in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to these routes (and `Secure` when served over TLS), so page
//! scripts can never read it. Every request that uses the cookie must also carry the double-submit
//! CSRF token: the `X-CSRF-Token` header equal to the `fa_csrf` cookie, which a page of another
//! origin can neither read nor set, and an `Origin`, when the browser sends one, naming this host.
//! Every other API call of the app carries its access token in `Authorization`, which a browser
//! never adds by itself, so those requests cannot be forged across sites either.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::principal::SessionCaller;
use super::routes::{
    ClientInfo, LoginRequest, PasswordChange, TokenResponse, end_session_of, password_changed, rotate, sign_in,
};
use super::secrets::random_bytes;
use crate::config::SecureCookies;
use crate::error::{AppError, Problem};
use crate::extract::ApiJson;
use crate::http::ClientIp;
use crate::state::AppState;

/// The refresh-token cookie.
pub const REFRESH_COOKIE: &str = "fa_refresh";
/// The CSRF cookie, readable by the app's scripts.
pub const CSRF_COOKIE: &str = "fa_csrf";
/// The header that must repeat the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The path the refresh cookie is sent to.
const REFRESH_PATH: &str = "/api/auth/browser";
/// The device cookie: this browser signed in to an account before (see `limits::login`). Sent
/// only to the sign-in route.
pub const DEVICE_COOKIE: &str = "fa_device";
const DEVICE_PATH: &str = "/api/auth/browser/login";
/// A year: a device stays known while it is used at least that often.
const DEVICE_MAX_AGE: u64 = 365 * 24 * 3600;

/// An access token for the web app; the refresh token is in the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrowserSession {
    /// Send as `Authorization: Bearer <access_token>`; keep it in memory only.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires; refresh before then.
    pub expires_in: u64,
    /// Seconds until the session ends.
    pub refresh_expires_in: u64,
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// Whether this request reached the server over TLS, as far as it can tell.
pub fn over_tls(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> bool {
    match state.settings.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => {
            let trusted = peer.is_some_and(|peer| state.settings.trusted_proxies.iter().any(|net| net.contains(&peer)));
            trusted
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|proto| proto.split(',').next().is_some_and(|first| first.trim() == "https"))
        }
    }
}

fn set_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    http_only: bool,
    secure: bool,
) {
    let mut text = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Strict");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if secure {
        text.push_str("; Secure");
    }
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A fresh CSRF token.
pub fn new_csrf_token() -> String {
    hex::encode(random_bytes::<32>())
}

/// Sets the CSRF cookie on a response (the app's page does this when the browser has none).
pub fn set_csrf_cookie(response: &mut Response, token: &str, secure: bool) {
    set_cookie(response, CSRF_COOKIE, token, "/", 60 * 60 * 24 * 400, false, secure);
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a cookie-authenticated request that does not prove it came from the app's own pages.
pub fn check_csrf(headers: &HeaderMap) -> Result<(), AppError> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) {
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get(header::HOST))
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(str::trim);
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        if origin_host.is_none() || origin_host != host {
            return Err(AppError::Forbidden("the request came from another site"));
        }
    }
    let cookie = cookie(headers, CSRF_COOKIE).filter(|value| value.len() >= 32);
    let presented = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
    match (cookie, presented) {
        (Some(cookie), Some(presented)) if equal_in_constant_time(cookie.as_bytes(), presented.as_bytes()) => Ok(()),
        _ => Err(AppError::Forbidden("the CSRF token is missing or does not match its cookie")),
    }
}

/// The address of the connection's other end, when the server was bound with connect info.
pub type Peer = Extension<ConnectInfo<SocketAddr>>;

/// The peer's address.
pub fn peer(connect: Option<Peer>) -> Option<IpAddr> {
    connect.map(|Extension(ConnectInfo(address))| address.ip())
}

/// The refresh token the browser presented, if any.
fn refresh_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, REFRESH_COOKIE).filter(|token| !token.is_empty())
}

/// Tells the browser to drop its refresh cookie.
fn clear_refresh_cookie(response: &mut Response, secure: bool) {
    set_cookie(response, REFRESH_COOKIE, "", REFRESH_PATH, 0, true, secure);
}

fn session_response(state: &AppState, tokens: TokenResponse, secure: bool) -> Response {
    let body = BrowserSession {
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        expires_in: tokens.expires_in,
        refresh_expires_in: tokens.refresh_expires_in,
    };
    let mut response = axum::Json(body).into_response();
    let max_age = tokens.refresh_expires_in.min(state.tokens.refresh_ttl().as_secs());
    set_cookie(&mut response, REFRESH_COOKIE, &tokens.refresh_token, REFRESH_PATH, max_age, true, secure);
    if let Some(device) = &tokens.device_token {
        set_cookie(&mut response, DEVICE_COOKIE, device, DEVICE_PATH, DEVICE_MAX_AGE, true, secure);
    }
    response
}

/// Signs the web app in: the refresh token is set as an `HttpOnly` cookie, the access token
/// returned. Needs the CSRF token (`X-CSRF-Token` equal to the `fa_csrf` cookie).
#[utoipa::path(post, path = "/api/auth/browser/login", tag = "auth", request_body = LoginRequest,
    params(("X-CSRF-Token" = String, Header, description = "The value of the `fa_csrf` cookie")),
    responses(
        (status = 200, description = "Signed in; the refresh cookie is set", body = BrowserSession),
        (status = 401, description = "Wrong user name or password", body = Problem),
        (status = 403, description = "Missing or wrong CSRF token, or another site's request", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    connect: Option<Peer>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    check_csrf(&headers)?;
    let secure = over_tls(&state, &headers, peer(connect));
    let shaped = state.clone();
    let client = super::routes::ClientInfo::of(ip, &headers);
    let device = cookie(&headers, DEVICE_COOKIE).filter(|token| !token.is_empty()).map(str::to_owned);
    sign_in(&state, client, ip, device, body, move |tokens| session_response(&shaped, tokens, secure)).await
}

/// Exchanges the refresh cookie for a new access token (and a new cookie). A used refresh token
/// ends its session, as at `/api/auth/refresh`.
#[utoipa::path(post, path = "/api/auth/browser/refresh", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "The value of the `fa_csrf` cookie")),
    responses(
        (status = 200, description = "A new access token; the cookie is replaced", body = BrowserSession),
        (status = 401, description = "No session, or it ended", body = Problem),
        (status = 403, description = "Missing or wrong CSRF token, or another site's request", body = Problem),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    connect: Option<Peer>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_csrf(&headers)?;
    let secure = over_tls(&state, &headers, peer(connect));
    let Some(token) = refresh_token(&headers) else { return Err(AppError::Unauthorized) };
    match rotate(&state, token).await {
        Ok(tokens) => Ok(session_response(&state, tokens, secure)),
        Err(AppError::Unauthorized) => {
            let mut response = AppError::Unauthorized.into_response();
            clear_refresh_cookie(&mut response, secure);
            Ok(response)
        }
        Err(other) => Err(other),
    }
}

/// Changes the password from the web app: as `/api/auth/password`, but the session that replaces
/// this page's arrives as a new refresh cookie, never as a refresh token in the page's reach.
#[utoipa::path(post, path = "/api/auth/browser/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    params(("X-CSRF-Token" = String, Header, description = "The value of the `fa_csrf` cookie")),
    responses(
        (status = 200, description = "Changed; every other session ended, this page's continues under a new cookie", body = BrowserSession),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Missing or wrong CSRF token, another site's request, or an API key", body = Problem),
        (status = 422, description = "Wrong current password or a refused new one", body = Problem),
        (status = 429, description = "Too many wrong current passwords", body = Problem),
    ))]
pub async fn password(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    connect: Option<Peer>,
    headers: HeaderMap,
    caller: SessionCaller,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, AppError> {
    check_csrf(&headers)?;
    let secure = over_tls(&state, &headers, peer(connect));
    let tokens = password_changed(&state, ClientInfo::of(ip, &headers), &caller, body).await?;
    Ok(session_response(&state, tokens, secure))
}

/// Signs the web app out: the session ends (its access tokens stop at once) and the cookie is
/// cleared. Signing out without a session succeeds.
#[utoipa::path(post, path = "/api/auth/browser/logout", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "The value of the `fa_csrf` cookie")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, description = "Missing or wrong CSRF token, or another site's request", body = Problem),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    connect: Option<Peer>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_csrf(&headers)?;
    let secure = over_tls(&state, &headers, peer(connect));
    if let Some(token) = refresh_token(&headers) {
        match end_session_of(&state, token).await {
            Ok(()) | Err(AppError::Unauthorized) => {}
            Err(other) => return Err(other),
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    clear_refresh_cookie(&mut response, secure);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn cookies_are_found_among_several_headers() {
        let map = headers(&[("cookie", "a=1; fa_csrf=xyz"), ("cookie", "fa_refresh=r")]);
        assert_eq!(cookie(&map, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&map, REFRESH_COOKIE), Some("r"));
        assert_eq!(cookie(&map, "missing"), None);
    }

    #[test]
    fn csrf_needs_the_header_to_repeat_the_cookie() {
        let cookie_header = format!("fa_csrf={TOKEN}");
        assert!(check_csrf(&headers(&[("cookie", &cookie_header), ("x-csrf-token", TOKEN)])).is_ok());
        assert!(check_csrf(&headers(&[("cookie", &cookie_header)])).is_err());
        assert!(check_csrf(&headers(&[("x-csrf-token", TOKEN)])).is_err());
        let other = "fedcba9876543210fedcba9876543210";
        assert!(check_csrf(&headers(&[("cookie", &cookie_header), ("x-csrf-token", other)])).is_err());
        // A short cookie (set by a sibling subdomain, say) is not accepted.
        assert!(check_csrf(&headers(&[("cookie", "fa_csrf=abc"), ("x-csrf-token", "abc")])).is_err());
    }

    #[test]
    fn csrf_refuses_another_sites_origin() {
        let cookie_header = format!("fa_csrf={TOKEN}");
        let base = [("cookie", cookie_header.as_str()), ("x-csrf-token", TOKEN), ("host", "app.example")];
        let with = |origin: &str| {
            let mut map = headers(&base);
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).expect("origin"));
            map
        };
        assert!(check_csrf(&with("https://app.example")).is_ok());
        assert!(check_csrf(&with("https://evil.example")).is_err());
        assert!(check_csrf(&with("null")).is_err());
    }
}
