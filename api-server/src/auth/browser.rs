//! `/api/auth/browser`: sign-in for the web app.
//!
//! The app keeps its access token in memory only; the refresh token lives in an `HttpOnly`,
//! `SameSite=Strict` cookie, so page scripts can never read it. Over TLS every cookie carries the
//! `__Host-` prefix: a browser then takes it only with `Secure`, `Path=/` and no `Domain`, so neither
//! a sibling subdomain nor a plain-HTTP page can plant one (cookie tossing), and the bare names are
//! ignored. Plain HTTP (one machine on localhost) keeps the bare names, which browsers would refuse
//! with the prefix, and scopes the refresh cookie to these routes.
//!
//! Every request that uses the cookie must also carry the CSRF token: the `X-CSRF-Token` header
//! equal to the CSRF cookie, which a page of another origin can neither read nor set. The token is
//! signed by the server and, once signed in, bound to the session: a token of another session (or
//! of nobody's) cannot refresh, change the password of or end this one. A request whose `Origin`
//! names another origin is refused; the host it is compared with comes from `X-Forwarded-Host`
//! only when a trusted proxy sent it, and over TLS the origin must be `https`.
//! Every other API call of the app carries its access token in `Authorization`, which a browser
//! never adds by itself, so those requests cannot be forged across sites either.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::principal::SessionCaller;
use super::session_service::{
    ClientInfo, LoginRequest, PasswordChange, TokenResponse, end_session_of, password_changed, rotate, sign_in,
};
use super::tokens::{CsrfBinding, TokenKind};
use crate::config::SecureCookies;
use crate::error::{AppError, Problem};
use crate::extractors::ApiJson;
use crate::limits::client_ip::ClientIp;
use crate::state::AppState;

/// The header that must repeat the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The path the refresh cookie is sent to over plain HTTP.
const REFRESH_PATH: &str = "/api/auth/browser";

/// The path the device cookie is sent to over plain HTTP: the sign-in route only.
const DEVICE_PATH: &str = "/api/auth/browser/login";

/// A year: a device stays known while it is used at least that often.
const DEVICE_MAX_AGE: u64 = 365 * 24 * 3600;

/// The browser's cookies, named and scoped for how the request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    /// Over TLS: `Secure` and `__Host-` names, all at `Path=/`.
    pub secure: bool,
}

impl Cookies {
    /// The refresh-token cookie.
    pub fn refresh(self) -> &'static str {
        if self.secure { "__Host-fa_refresh" } else { "fa_refresh" }
    }

    /// The CSRF cookie, readable by the app's scripts.
    pub fn csrf(self) -> &'static str {
        if self.secure { "__Host-fa_csrf" } else { "fa_csrf" }
    }

    /// The device cookie: this browser signed in to an account before (see `limits::login`).
    pub fn device(self) -> &'static str {
        if self.secure { "__Host-fa_device" } else { "fa_device" }
    }

    fn refresh_path(self) -> &'static str {
        if self.secure { "/" } else { REFRESH_PATH }
    }

    fn device_path(self) -> &'static str {
        if self.secure { "/" } else { DEVICE_PATH }
    }

    /// Sets a cookie; `max_age` `None` makes it last as long as the browser runs.
    fn set(self, response: &mut Response, name: &str, value: &str, path: &str, max_age: Option<u64>, http_only: bool) {
        let mut text = format!("{name}={value}; Path={path}; SameSite=Strict");
        if let Some(max_age) = max_age {
            text.push_str(&format!("; Max-Age={max_age}"));
        }
        if http_only {
            text.push_str("; HttpOnly");
        }
        if self.secure {
            text.push_str("; Secure");
        }
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// Sets the CSRF cookie: bound to a session for as long as it lasts, or, before sign-in, for as
    /// long as the browser runs.
    pub fn set_csrf(self, response: &mut Response, token: &str, max_age: Option<u64>) {
        self.set(response, self.csrf(), token, "/", max_age, false);
    }

    fn clear_refresh(self, response: &mut Response) {
        self.set(response, self.refresh(), "", self.refresh_path(), Some(0), true);
    }
}

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

fn from_trusted_proxy(state: &AppState, peer: Option<IpAddr>) -> bool {
    peer.is_some_and(|peer| state.settings.trusted_proxies.iter().any(|net| net.contains(&peer)))
}

/// Whether this request reached the server over TLS, as far as it can tell.
pub fn over_tls(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> bool {
    match state.settings.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => {
            from_trusted_proxy(state, peer)
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|proto| proto.split(',').next().is_some_and(|first| first.trim() == "https"))
        }
    }
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an `Origin` header names this server: the same host (`X-Forwarded-Host` only from a
/// trusted proxy, else `Host`) and, when the request is known to have come over TLS, `https`.
/// Over plain HTTP either scheme passes: a server that cannot tell cannot insist.
fn same_origin(origin: &str, host: Option<&str>, secure: bool) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else { return false };
    let scheme_ok = if secure { scheme == "https" } else { scheme == "https" || scheme == "http" };
    scheme_ok && !rest.is_empty() && !rest.contains('/') && host.is_some_and(|host| rest.eq_ignore_ascii_case(host))
}

/// A request from the web app's own pages: its origin checked, its cookies named for how it came,
/// and the CSRF token it carries, checked for the server's signature.
#[derive(Debug)]
pub struct BrowserRequest {
    /// The cookies' names and attributes for this request.
    pub cookies: Cookies,
    /// What the CSRF token is bound to.
    pub binding: CsrfBinding,
    headers: HeaderMap,
}

impl BrowserRequest {
    /// The value of one of this request's cookies, when present and not empty.
    fn cookie(&self, name: &str) -> Option<&str> {
        cookie(&self.headers, name).filter(|value| !value.is_empty())
    }

    /// The refresh token the browser presented, if any.
    fn refresh_token(&self) -> Option<&str> {
        self.cookie(self.cookies.refresh())
    }

    /// Refuses a token bound to anything but `session`.
    fn bound_to(&self, session: Uuid) -> Result<(), AppError> {
        match self.binding {
            CsrfBinding::Session(bound) if bound == session => Ok(()),
            _ => Err(AppError::Forbidden("the CSRF token belongs to another session")),
        }
    }
}

impl FromRequestParts<AppState> for BrowserRequest {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
        let headers = &parts.headers;
        let secure = over_tls(state, headers, peer);
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()) {
            let forwarded = if from_trusted_proxy(state, peer) { headers.get("x-forwarded-host") } else { None };
            let host = forwarded
                .or_else(|| headers.get(header::HOST))
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .map(str::trim);
            if !same_origin(origin, host, secure) {
                return Err(AppError::Forbidden("the request came from another site"));
            }
        }
        let cookies = Cookies { secure };
        let in_cookie = cookie(headers, cookies.csrf());
        let presented = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
        let binding = match (in_cookie, presented) {
            (Some(in_cookie), Some(presented))
                if equal_in_constant_time(in_cookie.as_bytes(), presented.as_bytes()) =>
            {
                state.tokens.csrf_binding(in_cookie)
            }
            _ => None,
        };
        let Some(binding) = binding else {
            return Err(AppError::Forbidden(
                "the CSRF token is missing, not this server's, or does not match its cookie",
            ));
        };
        Ok(Self { cookies, binding, headers: headers.clone() })
    }
}

/// The address of the connection's other end, when the server was bound with connect info.
pub type Peer = Extension<ConnectInfo<SocketAddr>>;

/// The peer's address.
pub fn peer(connect: Option<Peer>) -> Option<IpAddr> {
    connect.map(|Extension(ConnectInfo(address))| address.ip())
}

/// The web app's answer for a new or rotated session: the access token in the body; the refresh
/// token, a CSRF token bound to the session and, after a sign-in, the device token in cookies.
fn session_response(state: &AppState, tokens: TokenResponse, cookies: Cookies) -> Response {
    let session = state.tokens.verify(&tokens.refresh_token, TokenKind::Refresh).ok().map(|claims| claims.fam);
    let body = BrowserSession {
        access_token: tokens.access_token,
        token_type: tokens.token_type,
        expires_in: tokens.expires_in,
        refresh_expires_in: tokens.refresh_expires_in,
    };
    let mut response = axum::Json(body).into_response();
    let max_age = tokens.refresh_expires_in.min(state.tokens.refresh_ttl().as_secs());
    cookies.set(&mut response, cookies.refresh(), &tokens.refresh_token, cookies.refresh_path(), Some(max_age), true);
    if let Some(session) = session {
        cookies.set_csrf(&mut response, &state.tokens.csrf_token(CsrfBinding::Session(session)), Some(max_age));
    }
    if let Some(device) = &tokens.device_token {
        cookies.set(&mut response, cookies.device(), device, cookies.device_path(), Some(DEVICE_MAX_AGE), true);
    }
    response
}

/// Signs the web app in: the refresh token is set as an `HttpOnly` cookie, the access token
/// returned. Needs the CSRF token (`X-CSRF-Token` equal to the CSRF cookie).
#[utoipa::path(post, path = "/api/auth/browser/login", tag = "auth", request_body = LoginRequest,
    params(("X-CSRF-Token" = String, Header, description = "The value of the CSRF cookie (`fa_csrf`, `__Host-fa_csrf` over TLS)")),
    responses(
        (status = 200, description = "Signed in; the refresh cookie is set", body = BrowserSession),
        (status = 401, description = "Wrong user name or password", body = Problem),
        (status = 403, description = "Missing or wrong CSRF token, one of another session, or another site's request", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    browser: BrowserRequest,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    // Any token this server signed will do here: anyone can fetch an unbound one, so binding
    // could add nothing before sign-in; the double submit, the origin and the cookie prefix do.
    let shaped = state.clone();
    let client = ClientInfo::of(ip, &browser.headers);
    let device = browser.cookie(browser.cookies.device()).map(str::to_owned);
    let cookies = browser.cookies;
    sign_in(&state, client, ip, device, body, move |tokens| session_response(&shaped, tokens, cookies)).await
}

/// Exchanges the refresh cookie for a new access token (and a new cookie). A used refresh token
/// ends its session, as at `/api/auth/refresh`.
#[utoipa::path(post, path = "/api/auth/browser/refresh", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "The value of the CSRF cookie (`fa_csrf`, `__Host-fa_csrf` over TLS)")),
    responses(
        (status = 200, description = "A new access token; the cookie is replaced", body = BrowserSession),
        (status = 401, description = "No session, or it ended", body = Problem),
        (status = 403, description = "Missing or wrong CSRF token, one of another session, or another site's request", body = Problem),
    ))]
pub async fn refresh(State(state): State<AppState>, browser: BrowserRequest) -> Result<Response, AppError> {
    let Some(token) = browser.refresh_token() else { return Err(AppError::Unauthorized) };
    let verified = state.tokens.verify(token, TokenKind::Refresh);
    if let Ok(claims) = &verified {
        browser.bound_to(claims.fam)?;
    }
    let rotated = match verified {
        Ok(_) => rotate(&state, token).await,
        Err(_) => Err(AppError::Unauthorized),
    };
    match rotated {
        Ok(tokens) => Ok(session_response(&state, tokens, browser.cookies)),
        Err(AppError::Unauthorized) => {
            let mut response = AppError::Unauthorized.into_response();
            browser.cookies.clear_refresh(&mut response);
            Ok(response)
        }
        Err(other) => Err(other),
    }
}

/// Changes the password from the web app: as `/api/auth/password`, but the session that replaces
/// this page's arrives as a new refresh cookie, never as a refresh token in the page's reach.
#[utoipa::path(post, path = "/api/auth/browser/password", tag = "auth", security(("bearer" = [])), request_body = PasswordChange,
    params(("X-CSRF-Token" = String, Header, description = "The value of the CSRF cookie (`fa_csrf`, `__Host-fa_csrf` over TLS)")),
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
    caller: SessionCaller,
    browser: BrowserRequest,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, AppError> {
    browser.bound_to(caller.family)?;
    let tokens = password_changed(&state, ClientInfo::of(ip, &browser.headers), &caller, body).await?;
    Ok(session_response(&state, tokens, browser.cookies))
}

/// Signs the web app out: the session ends (its access tokens stop at once) and the cookie is
/// cleared. Signing out without a session succeeds.
#[utoipa::path(post, path = "/api/auth/browser/logout", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "The value of the CSRF cookie (`fa_csrf`, `__Host-fa_csrf` over TLS)")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 403, description = "Missing or wrong CSRF token, one of another session, or another site's request", body = Problem),
    ))]
pub async fn logout(State(state): State<AppState>, browser: BrowserRequest) -> Result<Response, AppError> {
    if let Some(token) = browser.refresh_token() {
        // A live session ends only with its own token; a dead or foreign cookie is just cleared.
        if let Ok(claims) = state.tokens.verify(token, TokenKind::Refresh) {
            browser.bound_to(claims.fam)?;
        }
        match end_session_of(&state, token).await {
            Ok(()) | Err(AppError::Unauthorized) => {}
            Err(other) => return Err(other),
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    browser.cookies.clear_refresh(&mut response);
    browser.cookies.set_csrf(&mut response, &state.tokens.csrf_token(CsrfBinding::Anonymous), None);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut map = HeaderMap::new();
        map.append(header::COOKIE, HeaderValue::from_static("a=1; fa_csrf=xyz"));
        map.append(header::COOKIE, HeaderValue::from_static("fa_refresh=r"));
        assert_eq!(cookie(&map, "fa_csrf"), Some("xyz"));
        assert_eq!(cookie(&map, "fa_refresh"), Some("r"));
        assert_eq!(cookie(&map, "missing"), None);
    }

    #[test]
    fn cookies_over_tls_are_host_only_and_secure() {
        let tls = Cookies { secure: true };
        let plain = Cookies { secure: false };
        assert_eq!(
            [tls.refresh(), tls.csrf(), tls.device()],
            ["__Host-fa_refresh", "__Host-fa_csrf", "__Host-fa_device"]
        );
        assert_eq!([plain.refresh(), plain.csrf(), plain.device()], ["fa_refresh", "fa_csrf", "fa_device"]);
        let mut response = StatusCode::OK.into_response();
        tls.set(&mut response, tls.refresh(), "v", tls.refresh_path(), Some(60), true);
        let set = response.headers()[header::SET_COOKIE].to_str().expect("ascii");
        assert_eq!(set, "__Host-fa_refresh=v; Path=/; SameSite=Strict; Max-Age=60; HttpOnly; Secure");
        assert!(!set.contains("Domain"));
    }

    #[test]
    fn an_origin_is_this_server_by_host_and_over_tls_by_scheme() {
        let host = Some("app.example");
        assert!(same_origin("https://app.example", host, true));
        assert!(same_origin("https://APP.example", host, true));
        assert!(!same_origin("http://app.example", host, true), "a plain-HTTP page cannot act on a TLS site");
        assert!(same_origin("http://app.example", host, false));
        assert!(same_origin("https://app.example", host, false));
        for origin in
            ["https://evil.example", "null", "app.example", "https://app.example/x", "ftp://app.example", "https://"]
        {
            assert!(!same_origin(origin, host, false), "{origin}");
        }
        assert!(!same_origin("https://app.example", None, false));
        assert!(!same_origin("https://app.example:8443", host, true), "another port is another origin");
    }
}
