//! Client addresses as the throttle counts them.

use std::net::IpAddr;

/// The unit throttled together: one IPv4 address, or one IPv6 /64 (what one host usually gets).
pub fn throttle_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_throttled_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(throttle_key(a), throttle_key(b));
        assert_eq!(throttle_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
