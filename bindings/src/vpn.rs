//! What `VpnService.Builder` needs from the engine: the addresses of the TUN
//! interface and the virtual DNS servers apps are told to use.

/// An address with prefix length, for `VpnService.Builder.addAddress` or
/// `addRoute`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IpPrefix {
    /// The address, e.g. "10.111.222.1".
    pub address: String,
    /// The prefix length, e.g. 32.
    pub prefix_length: i32,
}

/// The DNS server addresses to announce (`Builder.addDnsServer`) and route
/// into the tunnel (`Builder.addRoute(address, 32 or 128)`): the engine
/// answers DNS sent to them on the TUN device. IPv4 first, then IPv6.
#[uniffi::export]
pub fn virtual_dns_addresses() -> Vec<String> {
    vec![
        dotcore::tun::VIRTUAL_DNS_V4.to_string(),
        dotcore::tun::VIRTUAL_DNS_V6.to_string(),
    ]
}

/// The addresses of the TUN interface itself (`Builder.addAddress`); DNS
/// queries arrive from them. IPv4 first, then IPv6.
#[uniffi::export]
pub fn tun_interface_addresses() -> Vec<IpPrefix> {
    vec![
        IpPrefix {
            address: dotcore::tun::TUN_ADDRESS_V4.to_string(),
            prefix_length: i32::from(dotcore::tun::TUN_PREFIX_V4),
        },
        IpPrefix {
            address: dotcore::tun::TUN_ADDRESS_V6.to_string(),
            prefix_length: i32::from(dotcore::tun::TUN_PREFIX_V6),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_differ() {
        let dns: Vec<std::net::IpAddr> = virtual_dns_addresses()
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert!(dns[0].is_ipv4() && dns[1].is_ipv6());
        assert!(dns.iter().all(|ip| dotcore::tun::is_virtual_dns(*ip)));
        for (p, dns) in tun_interface_addresses().iter().zip(&dns) {
            let ip: std::net::IpAddr = p.address.parse().unwrap();
            assert_ne!(&ip, dns, "the interface is not the DNS server");
            assert!(p.prefix_length > 0);
        }
    }
}
