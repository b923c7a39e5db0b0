//! What `VpnService.Builder` needs from the engine: one record with the
//! TUN interface's addresses, its routes, the DNS servers to announce and
//! its MTU (the core's [`dotcore::net::tunnel_config`]). The app passes
//! each field on and derives nothing itself.

/// An address with prefix length, for `VpnService.Builder.addAddress` or
/// `addRoute`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IpPrefix {
    /// The address, e.g. "10.111.222.1".
    pub address: String,
    /// The prefix length, e.g. 32.
    pub prefix_length: i32,
}

impl From<dotcore::net::IpPrefix> for IpPrefix {
    fn from(p: dotcore::net::IpPrefix) -> Self {
        IpPrefix {
            address: p.address.to_string(),
            prefix_length: i32::from(p.length),
        }
    }
}

/// The TUN interface the engine serves, as the app builds it. IPv4 before
/// IPv6 in each list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TunnelConfig {
    /// The interface's own addresses (`Builder.addAddress`); DNS queries
    /// arrive from them.
    pub interface_addresses: Vec<IpPrefix>,
    /// Everything routed into the tunnel (`Builder.addRoute`): the virtual
    /// DNS servers' host routes only, so other traffic bypasses the VPN.
    pub routes: Vec<IpPrefix>,
    /// The DNS servers to announce (`Builder.addDnsServer`); the engine
    /// answers DNS sent to them on the TUN device.
    pub dns_servers: Vec<String>,
    /// The interface MTU (`Builder.setMtu`).
    pub mtu: i32,
}

/// The configuration of the TUN interface to build for the engine.
#[uniffi::export]
pub fn tunnel_config() -> TunnelConfig {
    let c = dotcore::net::tunnel_config();
    TunnelConfig {
        interface_addresses: c.interface_addresses.into_iter().map(Into::into).collect(),
        routes: c.routes.into_iter().map(Into::into).collect(),
        dns_servers: c.dns_servers.iter().map(ToString::to_string).collect(),
        mtu: i32::from(c.mtu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_carries_the_cores_configuration() {
        let core = dotcore::net::tunnel_config();
        let ffi = tunnel_config();
        assert_eq!(ffi.mtu, i32::from(core.mtu));
        let dns: Vec<std::net::IpAddr> =
            ffi.dns_servers.iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(dns, core.dns_servers);
        assert!(dns.iter().all(|ip| dotcore::net::is_virtual_dns(*ip)));
        let pairs = |prefixes: &[IpPrefix]| -> Vec<(String, i32)> {
            prefixes
                .iter()
                .map(|p| (p.address.clone(), p.prefix_length))
                .collect()
        };
        assert_eq!(
            pairs(&ffi.routes),
            [
                ("10.111.222.3".to_string(), 32),
                ("fd64:d07c:0:1::53".to_string(), 128)
            ]
        );
        assert_eq!(
            pairs(&ffi.interface_addresses),
            [
                ("10.111.222.1".to_string(), 32),
                ("fd64:d07c:0:1::1".to_string(), 128)
            ]
        );
    }
}
