//! The layers around every route: authentication and rate limiting ([`protect`]), HTTP metrics,
//! security headers, CORS, compression, timeouts and body limits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use finagent_core::names;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::principal::{Authentication, authenticate};
use crate::error::AppError;
use crate::limits::client_ip::{ClientIp, address_key, client_ip};
use crate::limits::rate::{RouteClass, rate_limit_headers};
use crate::state::AppState;

/// The rate-limit class of a route, by its matched path; `None` for operational routes.
pub fn route_class(method: &Method, path: &str) -> Option<RouteClass> {
    match (method, path) {
        (_, "/healthz" | "/readyz" | "/metrics") => None,
        // The web app's assets and client-side pages: static; a page load asks for a dozen.
        (&Method::GET, path) if path.starts_with("/assets/") || crate::web::PAGES.contains(&path) => None,
        (&Method::POST, "/api/ocr/process") => Some(RouteClass::Upload),
        (&Method::POST, "/api/auth/register") => Some(RouteClass::Login),
        _ => Some(RouteClass::Api),
    }
}

/// Resolves the client address, applies the per-address limit of every request, then (on API
/// routes only) authenticates the caller and applies the route's rate limit: per user when signed
/// in, per address otherwise. Operational routes and the web app's static files never look
/// credentials up, and no credential is looked up for an address past its limit, so an anonymous
/// flood with made-up keys costs no store queries. Refusals are 429 with `Retry-After`; every
/// limited response carries `RateLimit-*` headers.
pub async fn protect(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ConnectInfo(address)| address.ip());
    let ip = client_ip(peer, request.headers(), &state.settings.trusted_proxies);
    request.extensions_mut().insert(ClientIp(ip));
    let address_limit = state.settings.limits.address;
    let decision = match state.guard.check_rate(&[(format!("address:{}", address_key(ip)), address_limit)]).await {
        Ok(decision) => decision,
        Err(error) => return AppError::from(error).into_response(),
    };
    if !decision.allowed {
        tracing::warn!(target: "security", event = "address_rate_limited", client.address = %ip, "request refused: too many from this address");
        let mut response = AppError::TooManyRequests(decision.retry_after).into_response();
        rate_limit_headers(&mut response, address_limit.burst, address_limit.window(), &decision);
        return response;
    }
    let path = request.extensions().get::<MatchedPath>().map(|matched| matched.as_str().to_owned());
    let class = path.as_deref().and_then(|path| route_class(request.method(), path));
    let Some(class) = class else {
        request.extensions_mut().insert(Authentication::Anonymous);
        return next.run(request).await;
    };
    let authentication = authenticate(&state, request.headers()).await;
    let bucket = match &authentication {
        Authentication::Authenticated(principal) => format!("{}:user:{}", class.as_str(), principal.user_id),
        _ => format!("{}:ip:{}", class.as_str(), address_key(ip)),
    };
    if matches!(authentication, Authentication::Refused) {
        tracing::info!(target: "security", event = "credentials_refused", client.address = %ip, "credentials refused");
    }
    request.extensions_mut().insert(authentication);
    let limit = state.settings.limits.of(class);
    let decision = match state.guard.check_rate(&[(bucket, limit)]).await {
        Ok(decision) => decision,
        Err(error) => return AppError::from(error).into_response(),
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        AppError::TooManyRequests(decision.retry_after).into_response()
    };
    rate_limit_headers(&mut response, limit.burst, limit.window(), &decision);
    response
}

/// HTTP metrics by matched route, method and status.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Registers the HTTP metrics.
    pub fn register(metrics: &finagent_platform::metrics::Metrics) -> Result<Self, prometheus::Error> {
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new(names::metrics::HTTP_REQUESTS, "HTTP requests by route and status."),
            &labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(names::metrics::HTTP_DURATION, "HTTP request duration by route and status, in seconds.")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &labels,
        )?;
        metrics.registry().register(Box::new(requests.clone()))?;
        metrics.registry().register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }
}

async fn record(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // Unmatched paths share one label, so scanners cannot blow up the series count.
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |matched| matched.as_str()).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    metrics.requests.with_label_values(&labels).inc();
    metrics.duration.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
    response
}

fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(HeaderName::from_static(name), HeaderValue::from_static(value))
}

/// The content security policy of every response that sets none of its own: the API serves data,
/// which must never run as a page. The web app and the docs pages set their own.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-device-token"),
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            header::ETAG,
        ])
        .max_age(Duration::from_secs(600))
}

/// Wraps the routes in every layer. Layers run outside-in in the reverse order of this list:
/// headers and CORS see every response, including timeouts, refusals and unknown paths.
pub fn layered(routes: Router, state: AppState, http_metrics: HttpMetrics) -> Router {
    routes
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), protect))
        .layer(middleware::from_fn_with_state(http_metrics, record))
        .layer(DefaultBodyLimit::max(state.settings.max_json_body))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.settings.request_timeout))
        // An answer under 1 KiB fits one packet: gzip would cost more than the bytes it saves.
        .layer(CompressionLayer::new().gzip(true).compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))))
        .layer(cors(&state.settings.cors_allowed_origins))
        .layer(security_header("content-security-policy", CONTENT_SECURITY_POLICY))
        .layer(security_header("strict-transport-security", "max-age=63072000; includeSubDomains"))
        .layer(security_header("x-content-type-options", "nosniff"))
        .layer(security_header("x-frame-options", "DENY"))
        .layer(security_header("referrer-policy", "no-referrer"))
        .layer(security_header("cross-origin-opener-policy", "same-origin"))
        .layer(security_header("cache-control", "no-store"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_prefix() {
        let key = |text: &str| address_key(text.parse().expect("ip"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
    }
}
