//! The client's address: the peer, unless the peer is a trusted proxy; then the nearest
//! untrusted hop of `X-Forwarded-For` (read right to left), or `X-Real-IP`. Headers from an
//! untrusted peer are ignored, so a client cannot choose its own address.

use actix_web::HttpRequest;
use ipnet::IpNet;
use std::net::IpAddr;

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client's address: the peer's, or, from a peer in `proxies`, the one the forwarding headers
/// name; `None` without a peer.
pub fn client_ip(req: &HttpRequest, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted(peer, proxies) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if !hops.is_empty() {
        let mut nearest = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
                return Some(nearest);
            };
            nearest = ip;
            if !trusted(ip, proxies) {
                break;
            }
        }
        return Some(nearest);
    }
    let real = req
        .headers()
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map(canonical);
    Some(real.unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        for (k, v) in headers {
            r = r.append_header((*k, *v));
        }
        r.to_http_request()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/8"]);
        let xff = [("x-forwarded-for", "203.0.113.9, 10.0.0.2")];
        let ip = |peer, h: &[(&str, &str)]| client_ip(&req(peer, h), &proxies).unwrap().to_string();
        assert_eq!(
            ip("198.51.100.7", &xff),
            "198.51.100.7",
            "untrusted peer: header ignored"
        );
        assert_eq!(ip("10.0.0.1", &xff), "203.0.113.9");
        // A client-supplied hop left of the first untrusted one is not believed.
        assert_eq!(
            ip("10.0.0.1", &[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]),
            "203.0.113.9"
        );
        assert_eq!(
            ip("10.0.0.1", &[("x-real-ip", "203.0.113.5")]),
            "203.0.113.5"
        );
        assert_eq!(
            ip("10.0.0.1", &[("x-forwarded-for", "garbage")]),
            "10.0.0.1"
        );
        assert_eq!(ip("10.0.0.1", &[]), "10.0.0.1");
    }
}
