//! Which addresses hookd may connect to (the SSRF guard's rule).
//!
//! By default only global unicast addresses: loopback, private, link-local
//! (cloud metadata at 169.254.169.254), carrier-grade NAT, documentation,
//! benchmarking, multicast and reserved ranges are refused. An IPv4 address
//! carried inside IPv6 (mapped, NAT64, 6to4) is judged as that IPv4
//! address. `allowed_networks` opens listed ranges; `allow_private_networks`
//! opens everything. The rule is applied by the connector to each address
//! DNS returns, right before connecting, so DNS rebinding cannot slip a
//! private address past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The operator's choice of what may be reached.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DestinationPolicy {
    pub allow_private_networks: bool,
    pub allowed_networks: Vec<IpNet>,
}

impl DestinationPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.allow_private_networks || is_global(ip) {
            return true;
        }
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed_networks
            .iter()
            .any(|network| network.contains(&ip) || embedded.is_some_and(|v4| network.contains(&v4)))
    }
}

/// Whether `ip` is a global unicast address.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    const REFUSED: [(u32, u8); 14] = [
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
        (0x0A00_0000, 8),  // 10.0.0.0/8 private
        (0x6440_0000, 10), // 100.64.0.0/10 carrier-grade NAT
        (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
        (0xA9FE_0000, 16), // 169.254.0.0/16 link-local, cloud metadata
        (0xAC10_0000, 12), // 172.16.0.0/12 private
        (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
        (0xC000_0200, 24), // 192.0.2.0/24 documentation
        (0xC0A8_0000, 16), // 192.168.0.0/16 private
        (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
        (0xC633_6400, 24), // 198.51.100.0/24 documentation
        (0xCB00_7100, 24), // 203.0.113.0/24 documentation
        (0xE000_0000, 4),  // 224.0.0.0/4 multicast
        (0xF000_0000, 4),  // 240.0.0.0/4 reserved, broadcast
    ];
    let bits = u32::from(ip);
    !REFUSED
        .iter()
        .any(|&(network, length)| bits >> (32 - length) == network >> (32 - length))
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        let local_nat64 = is_in(ip, 0x0064_ff9b_0001 << 80, 48);
        return is_global_v4(v4) && (!local_nat64 || is_global_v4(nat64_48(ip)));
    }
    const REFUSED: [(u128, u8); 7] = [
        (0, 96),                 // ::/96 IPv4-compatible, with :: and ::1
        (0xfe80 << 112, 10),     // fe80::/10 link-local
        (0xfec0 << 112, 10),     // fec0::/10 site-local (deprecated, still routed inside some sites)
        (0xfc00 << 112, 7),      // fc00::/7 unique local
        (0xff00 << 112, 8),      // ff00::/8 multicast
        (0x2001_0000 << 96, 32), // 2001::/32 Teredo
        (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation
    ];
    !REFUSED.iter().any(|&(network, length)| is_in(ip, network, length))
}

/// The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let last_32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if is_in(ip, 0xffff_0000_0000, 96) || is_in(ip, 0x0064_ff9b << 96, 96) || is_in(ip, 0x0064_ff9b_0001 << 80, 48) {
        // ::ffff:a.b.c.d, 64:ff9b::a.b.c.d, and the RFC 6052 /96 layout
        // inside the local-use 64:ff9b:1::/48.
        Some(last_32)
    } else if is_in(ip, 0x2002 << 112, 16) {
        // 6to4: 2002:AABB:CCDD::/48 carries a.b.c.d in bits 16..48.
        Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32))
    } else {
        None
    }
}

/// The IPv4 address in the RFC 6052 /48 layout (bits 48..64 and 72..88),
/// also checked for 64:ff9b:1::/48 so neither layout can smuggle one in.
fn nat64_48(ip: Ipv6Addr) -> Ipv4Addr {
    let bits = u128::from(ip);
    let high = ((bits >> 64) & 0xffff) as u32;
    let low = ((bits >> 40) & 0xffff) as u32;
    Ipv4Addr::from((high << 16) | low)
}

fn is_in(ip: Ipv6Addr, network: u128, length: u8) -> bool {
    let shift = 128 - u32::from(length);
    u128::from(ip).checked_shr(shift).unwrap_or(0) == network.checked_shr(shift).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn an_ipv4_address_in_ipv6_clothing_gets_the_same_verdict(bits in any::<u32>()) {
            let v4 = Ipv4Addr::from(bits);
            let policy = DestinationPolicy::default();
            prop_assert_eq!(policy.permits(IpAddr::V6(v4.to_ipv6_mapped())), policy.permits(IpAddr::V4(v4)));
        }

        #[test]
        fn private_ranges_are_refused_anywhere_inside(
            range in prop::sample::select(vec![
                "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16",
                "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10",
            ]),
            bits in any::<u128>(),
        ) {
            let network: IpNet = range.parse().unwrap();
            let ip = match network {
                IpNet::V4(net) => {
                    let host = (bits as u32) & !u32::from(net.netmask());
                    IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) | host))
                }
                IpNet::V6(net) => {
                    let host = bits & !u128::from(net.netmask());
                    IpAddr::V6(Ipv6Addr::from(u128::from(net.network()) | host))
                }
            };
            prop_assert!(!DestinationPolicy::default().permits(ip), "{ip} in {range}");
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_refused_range_is_refused_at_both_ends() {
        let refused = [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.0.0",
            "169.254.169.254",
            "169.254.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.255",
            "192.0.2.0",
            "192.0.2.255",
            "192.168.0.0",
            "192.168.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "198.51.100.0",
            "198.51.100.255",
            "203.0.113.0",
            "203.0.113.255",
            "224.0.0.0",
            "239.255.255.255",
            "240.0.0.0",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "::7f00:1",
            "::ffff:ffff",
            "fe80::",
            "febf:ffff::1",
            "fec0::",
            "fec0::1",
            "feff:ffff::1",
            "fc00::",
            "fdff:ffff::1",
            "ff00::",
            "ff02::1",
            "2001::",
            "2001:0:ffff::1",
            "2001:db8::",
            "2001:db8:ffff::1",
            // IPv4 inside IPv6, judged as the IPv4 address
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::c0a8:1",
            "64:ff9b:1:7f00:0:100::",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
        ];
        for text in refused {
            assert!(!is_global(ip(text)), "{text} must be refused");
            assert!(!DestinationPolicy::default().permits(ip(text)), "{text}");
        }
    }

    #[test]
    fn global_addresses_pass() {
        let global = [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            // IPv6
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:1::1",
            "2001:db9::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ];
        for text in global {
            assert!(is_global(ip(text)), "{text} must pass");
        }
    }

    #[test]
    fn operators_can_open_ranges() {
        let policy = DestinationPolicy {
            allow_private_networks: false,
            allowed_networks: vec!["10.20.0.0/16".parse().unwrap(), "127.0.0.1/32".parse().unwrap()],
        };
        assert!(policy.permits(ip("10.20.3.4")));
        assert!(!policy.permits(ip("10.21.0.1")));
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")), "judged as the IPv4 address");
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("169.254.169.254")));
        let open = DestinationPolicy {
            allow_private_networks: true,
            allowed_networks: vec![],
        };
        assert!(open.permits(ip("169.254.169.254")) && open.permits(ip("::1")));
    }
}
