//! Who the client is (SPEC §5): the peer address, unless the peer is a trusted proxy,
//! in which case the forwarding headers are walked from the nearest hop outwards and
//! the first address that is not a trusted proxy is the client. Addresses a client
//! wrote itself sit left of that point and are never believed.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{FORWARDED, HeaderMap};
use ipnet::IpNet;

pub(crate) fn resolve(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops = forwarded_for(headers)
        .or_else(|| x_forwarded_for(headers))
        .unwrap_or_default();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // An unparsable hop (`unknown`, an obfuscated name) ends what we can vouch for.
        let Some(ip) = hop else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// RFC 7239 `for=` values, in order, across every `Forwarded` header.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED) {
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            for pair in element.split(';') {
                if let Some((key, raw)) = pair.trim().split_once('=')
                    && key.trim().eq_ignore_ascii_case("for")
                {
                    hops.push(parse_node(raw.trim().trim_matches('"')));
                }
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        hops.extend(value.split(',').map(|h| parse_node(h.trim())));
    }
    (!hops.is_empty()).then_some(hops)
}

/// `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:8080` or `2001:db8::1`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    raw.strip_prefix('[')?.split(']').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().ok()?, 4000))
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            resolve(peer("203.0.113.9"), &h, &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(resolve(peer("10.0.0.1"), &h, &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_header_wins_and_understands_ports_and_ipv6() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::1]:443\";proto=https, for=10.0.0.5",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(resolve(peer("10.0.0.1"), &h, &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn trusted_peer_without_headers_is_the_client() {
        assert_eq!(
            resolve(peer("10.0.0.1"), &HeaderMap::new(), &nets(&["10.0.0.0/8"])),
            ip("10.0.0.1")
        );
    }
}
