//! The client's address: the TCP peer, or what a trusted proxy says it forwarded.
//!
//! `X-Forwarded-For` is a list each proxy appends to, so only its right end is trustworthy: walking
//! from the right, every hop added by a trusted proxy is skipped and the first address that is not
//! a trusted proxy is the client. A peer that is not a trusted proxy is the client itself, whatever
//! headers it sends.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client address of a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().expect("header"));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = ["10.0.0.0/8".parse().expect("net")];
        assert_eq!(client_ip(ip("203.0.113.9"), &headers("1.2.3.4"), &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("203.0.113.9"), &headers("1.2.3.4"), &[]), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_from_the_right() {
        let trusted = ["10.0.0.0/8".parse().expect("net")];
        // The client forged the first entry; the proxy chain appended the real one.
        let forwarded = headers("6.6.6.6, 198.51.100.7, 10.1.2.3");
        assert_eq!(client_ip(ip("10.0.0.1"), &forwarded, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_in_the_header_stops_the_walk() {
        let trusted = ["10.0.0.0/8".parse().expect("net")];
        assert_eq!(client_ip(ip("10.0.0.1"), &headers("not-an-ip"), &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted), ip("10.0.0.1"));
    }
}

/// The client address of a request, left in its extensions by [`protect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The part of an address that identifies a client for rate limits: the whole IPv4 address, or
/// the /64 prefix of an IPv6 one (a single host usually holds a whole /64, so per-address keys
/// would let it take fresh buckets at will).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
            }
        },
    }
}
