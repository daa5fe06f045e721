//! The unit a ban applies to: an IPv4 address, or the IPv6 network a host owns (a /64 by
//! default: banning one IPv6 address is banning nothing, the host picks another).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub fn prefix_of(ip: IpAddr, ipv6_prefix: u8) -> IpNet {
    match ip {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::new(v4, 32).unwrap_or_default()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet::V4(Ipv4Net::new(v4, 32).unwrap_or_default()),
            None => IpNet::V6(
                Ipv6Net::new(v6, ipv6_prefix.min(128))
                    .map(|n| n.trunc())
                    .unwrap_or_default(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_per_address_ipv6_per_network() {
        let p = |s: &str, len| prefix_of(s.parse().unwrap(), len).to_string();
        assert_eq!(p("192.0.2.7", 64), "192.0.2.7/32");
        assert_eq!(p("2001:db8:1:2:aaaa::1", 64), "2001:db8:1:2::/64");
        assert_eq!(p("2001:db8:1:2:ffff::9", 64), "2001:db8:1:2::/64");
        assert_ne!(p("2001:db8:1:3::1", 64), "2001:db8:1:2::/64");
        assert_eq!(p("2001:db8:1:2:aaaa::1", 128), "2001:db8:1:2:aaaa::1/128");
        assert_eq!(p("::ffff:192.0.2.7", 64), "192.0.2.7/32");
    }
}
