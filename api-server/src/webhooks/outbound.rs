//! Where a webhook may send: outbound addresses checked when a URL is registered and again at every
//! connection (the name resolved, every address checked, only checked addresses connected to), so
//! neither a private target nor DNS rebinding gets through.

use super::*;

/// Whether an address is one webhooks must never reach (unless private targets are allowed):
/// loopback, private, link-local, carrier-grade NAT, IETF protocol assignments, documentation,
/// benchmarking, multicast, reserved, unspecified, site-local and unique-local ranges, and every
/// IPv6 form that carries an IPv4 address (mapped, compatible, NAT64, 6to4 and Teredo), which
/// could reach an internal IPv4 host through a translator or a relay.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| v6.to_ipv4()) {
                return is_internal(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8)
                // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), 6to4 (2002::/16) and
                // Teredo (2001::/32) embed IPv4 addresses a gateway would reach for us.
                || (first == 0x0064 && second == 0xff9b)
                || first == 0x2002
                || (first == 0x2001 && second == 0x0000)
        }
    }
}

/// Whether an address is link-local, where cloud metadata services answer (169.254.169.254,
/// fd00:ec2::254 sits in unique-local space and is refused with it). Webhooks never reach these,
/// even when private targets are allowed.
pub(crate) fn is_never_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_never_allowed(IpAddr::V4(v4)),
            None => {
                (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.segments()[..4] == [0xfd00, 0x0ec2, 0, 0]
            }
        },
    }
}

/// Whether webhooks may reach `ip`, with private targets allowed or not.
pub fn reachable(ip: IpAddr, allow_private: bool) -> bool {
    !is_never_allowed(ip) && (allow_private || !is_internal(ip))
}

/// Ports webhooks may reach: the web's own and the unprivileged range. Privileged ports other than
/// 80 and 443 belong to mail, name and directory services that a POST must never be relayed to.
pub fn allowed_port(port: u16) -> bool {
    port == 80 || port == 443 || port >= 1024
}

/// Resolves a host name and keeps only the addresses webhooks may reach; fails when none is left.
pub(crate) async fn resolve_allowed(host: &str, port: u16, allow_private: bool) -> std::io::Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let allowed: Vec<SocketAddr> =
        addresses.iter().copied().filter(|address| reachable(address.ip(), allow_private)).collect();
    if allowed.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{host} resolves only to internal addresses"),
        ));
    }
    Ok(allowed)
}

/// The resolver of the webhook client: [`resolve_allowed`], so a name that resolves to an internal
/// address at delivery time (DNS rebinding) is refused too.
#[derive(Clone, Debug)]
pub(crate) struct CheckedResolver {
    allow_private: bool,
}

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move { resolve_allowed(name.as_str(), 0, allow_private).await.map(IntoIterator::into_iter) })
    }
}

pub(crate) type WebhookClient = Client<hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

pub(crate) fn client(settings: WebhookSettings) -> WebhookClient {
    let mut http = HttpConnector::new_with_resolver(CheckedResolver { allow_private: settings.allow_private_targets });
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

/// Checks a target URL: `http` or `https`, a host, no credentials, and (unless private targets
/// are allowed) a host that resolves to public addresses only.
pub(crate) async fn check_url(url: &str, allow_private: bool) -> Result<String, AppError> {
    let invalid = |why: &str| AppError::Invalid(format!("url: {why}"));
    if url.len() > 2048 {
        return Err(invalid("at most 2048 characters"));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid("http or https only")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("credentials do not belong in the URL"));
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if !allowed_port(port) {
        return Err(invalid("ports under 1024 other than 80 and 443 are not allowed"));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if !reachable(ip, allow_private) => {
            return Err(invalid("loopback, private, link-local and other internal addresses are not allowed"));
        }
        Ok(_) => {}
        Err(_) => {
            resolve_allowed(host, port, allow_private).await.map_err(|error| match error.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    invalid("the host resolves to loopback, private or link-local addresses, which are not allowed")
                }
                _ => invalid("the host does not resolve"),
            })?;
        }
    }
    Ok(uri.to_string())
}
