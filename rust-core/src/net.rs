//! The tunnel's addresses and sizes: what the platform builds the TUN
//! interface from, and what every layer that must recognise our own
//! addresses reads.
//!
//! A leaf module (it uses nothing of the crate), so that configuration,
//! the resolver and the packet path can all depend on it without depending
//! on each other. The app does not derive any of this itself: it asks for
//! [`tunnel_config`] (exported to Kotlin as `tunnelConfig()`) and hands each
//! field to `VpnService.Builder`; the Linux device simulator builds its TUN
//! from the same record.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The IPv4 address apps send DNS queries to: the TUN's only IPv4 route.
/// In 10.0.0.0/8 (RFC 1918) so it is never a real server's address; the
/// host must not use it on any other interface.
pub const VIRTUAL_DNS_V4: Ipv4Addr = Ipv4Addr::new(10, 111, 222, 3);

/// The IPv6 address apps send DNS queries to: the TUN's only IPv6 route.
/// In a unique local prefix (RFC 4193, fd00::/8).
pub const VIRTUAL_DNS_V6: Ipv6Addr = Ipv6Addr::new(0xfd64, 0xd07c, 0, 1, 0, 0, 0, 0x53);

/// The address the host gives the TUN interface itself (IPv4, prefix
/// [`TUN_PREFIX_V4`]): queries come from it.
pub const TUN_ADDRESS_V4: Ipv4Addr = Ipv4Addr::new(10, 111, 222, 1);

/// The prefix length of [`TUN_ADDRESS_V4`]: only the interface's own
/// address, so the interface claims no other address of 10.0.0.0/8.
pub const TUN_PREFIX_V4: u8 = 32;

/// The address the host gives the TUN interface itself (IPv6, prefix
/// [`TUN_PREFIX_V6`]).
pub const TUN_ADDRESS_V6: Ipv6Addr = Ipv6Addr::new(0xfd64, 0xd07c, 0, 1, 0, 0, 0, 1);

/// The prefix length of [`TUN_ADDRESS_V6`].
pub const TUN_PREFIX_V6: u8 = 128;

/// The MTU of the TUN interface. Only DNS enters the tunnel, and queries
/// are far below any MTU, so this only bounds what the system sends in; it
/// is the Ethernet MTU (RFC 894) that Wi-Fi and most mobile networks
/// carry, so a DNS-over-TCP segment the system builds for the tunnel is no
/// larger than one it would send on the network. Answers the engine writes
/// back are sized by the client's EDNS buffer, not by this.
pub const TUN_MTU: u16 = 1500;

/// Whether `ip` is one of the virtual DNS addresses.
pub fn is_virtual_dns(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a == VIRTUAL_DNS_V4,
        IpAddr::V6(a) => a == VIRTUAL_DNS_V6,
    }
}

/// An address with a prefix length, as `VpnService.Builder.addAddress` and
/// `addRoute` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    /// The address.
    pub address: IpAddr,
    /// The prefix length (at most 32 for IPv4, 128 for IPv6).
    pub length: u8,
}

impl IpPrefix {
    /// The host route for `address` (/32 or /128).
    pub fn host(address: IpAddr) -> IpPrefix {
        let length = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        IpPrefix { address, length }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

/// Everything the platform needs to build the TUN interface the engine
/// serves, IPv4 before IPv6 in each list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelConfig {
    /// The interface's own addresses (`Builder.addAddress`); queries come
    /// from them.
    pub interface_addresses: Vec<IpPrefix>,
    /// What is routed into the tunnel (`Builder.addRoute`): the virtual DNS
    /// servers' host routes and nothing else, so all other traffic bypasses
    /// the VPN.
    pub routes: Vec<IpPrefix>,
    /// The DNS servers to announce (`Builder.addDnsServer`): the virtual
    /// addresses the engine answers on.
    pub dns_servers: Vec<IpAddr>,
    /// The interface MTU (`Builder.setMtu`).
    pub mtu: u16,
}

/// The configuration of the TUN interface the engine expects.
pub fn tunnel_config() -> TunnelConfig {
    let dns_servers = vec![IpAddr::V4(VIRTUAL_DNS_V4), IpAddr::V6(VIRTUAL_DNS_V6)];
    TunnelConfig {
        interface_addresses: vec![
            IpPrefix {
                address: IpAddr::V4(TUN_ADDRESS_V4),
                length: TUN_PREFIX_V4,
            },
            IpPrefix {
                address: IpAddr::V6(TUN_ADDRESS_V6),
                length: TUN_PREFIX_V6,
            },
        ],
        routes: dns_servers.iter().copied().map(IpPrefix::host).collect(),
        dns_servers,
        mtu: TUN_MTU,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunnel_routes_exactly_the_virtual_dns_servers() {
        let c = tunnel_config();
        assert_eq!(c.dns_servers.len(), 2);
        assert!(c.dns_servers[0].is_ipv4() && c.dns_servers[1].is_ipv6());
        assert!(c.dns_servers.iter().all(|ip| is_virtual_dns(*ip)));
        let routed: Vec<IpAddr> = c.routes.iter().map(|r| r.address).collect();
        assert_eq!(routed, c.dns_servers, "routes are the DNS servers, no more");
        assert_eq!(
            c.routes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.111.222.3/32", "fd64:d07c:0:1::53/128"]
        );
    }

    #[test]
    fn the_interface_is_not_the_dns_server_and_claims_only_itself() {
        let c = tunnel_config();
        for (p, dns) in c.interface_addresses.iter().zip(&c.dns_servers) {
            assert_ne!(&p.address, dns);
            assert!(!is_virtual_dns(p.address));
            assert_eq!(p.length, IpPrefix::host(p.address).length, "{p}");
        }
        assert!(!is_virtual_dns(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(VIRTUAL_DNS_V4.is_private());
        assert_eq!(VIRTUAL_DNS_V6.segments()[0] & 0xfe00, 0xfc00, "ULA");
        assert!(
            c.mtu >= 1280,
            "IPv6 needs at least 1280 (RFC 8200 section 5)"
        );
    }
}
