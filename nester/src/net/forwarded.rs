//! The client behind a reverse proxy. `X-Forwarded-For` is believed only from a peer in
//! `[threats] trusted_proxies`, and then only as far as it is written by trusted hops: read
//! from the right (each proxy appends the address it got the request from), the first entry
//! that is not itself a trusted proxy is the client. Whatever a client writes on the left is
//! never reached. An entry that is not an address stops the walk at the last trusted hop.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address: `peer` itself unless it is a trusted proxy that forwarded for one.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Several headers are one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_trusted_hops_are_believed() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let proxy = ip("10.0.0.2");
        // No proxy: the header is the client's word, ignored.
        assert_eq!(
            client_ip(ip("192.0.2.1"), &with(&["203.0.113.9"]), &trusted),
            ip("192.0.2.1")
        );
        // From a proxy: the address it got the request from.
        assert_eq!(
            client_ip(proxy, &with(&["203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
        // A client's own entries on the left are never reached.
        assert_eq!(
            client_ip(proxy, &with(&["198.51.100.7, 203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
        // Through two trusted proxies, in one header or several.
        assert_eq!(
            client_ip(
                proxy,
                &with(&["198.51.100.7, 203.0.113.9, 10.0.0.3"]),
                &trusted
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(
                proxy,
                &with(&["198.51.100.7, 203.0.113.9", "10.0.0.3"]),
                &trusted
            ),
            ip("203.0.113.9")
        );
        // Garbage stops the walk at the last trusted hop; no header leaves the proxy.
        assert_eq!(
            client_ip(proxy, &with(&["203.0.113.9, bogus, 10.0.0.3"]), &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(client_ip(proxy, &with(&["unknown"]), &trusted), proxy);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        // An IPv4-mapped IPv6 entry is the IPv4 client.
        assert_eq!(
            client_ip(proxy, &with(&["::ffff:203.0.113.9"]), &trusted),
            ip("203.0.113.9")
        );
        // With nothing trusted, nothing is believed.
        assert_eq!(client_ip(proxy, &with(&["203.0.113.9"]), &[]), proxy);
    }
}
