//! The built-in catalogue of public DNS-over-TLS providers.
//!
//! Each entry is what the provider publishes for DoT: the authentication
//! domain name (sent as SNI and checked against the certificate) and the
//! anycast addresses. Sources are listed in `docs/providers.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The standard DoT port (RFC 7858 §3.1).
pub const DOT_PORT: u16 = 853;

/// One public DoT service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Stable identifier used in settings and on the command line.
    pub id: &'static str,
    /// Name shown to people.
    pub display_name: &'static str,
    /// Authentication domain name. For a template provider it contains
    /// `{id}`, replaced by the user's configuration ID.
    pub auth_name: &'static str,
    /// Anycast addresses, IPv4 first.
    pub addresses: &'static [IpAddr],
    /// TCP port.
    pub port: u16,
    /// Whether the provider needs a per-user configuration ID (NextDNS).
    pub needs_config_id: bool,
    /// One line on what the service does (filtering, logging policy).
    pub description: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
}

/// Every built-in provider; the first is the default.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        id: "cloudflare",
        display_name: "Cloudflare 1.1.1.1",
        auth_name: "one.one.one.one",
        addresses: &[
            v4(1, 1, 1, 1),
            v4(1, 0, 0, 1),
            v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111),
            v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1001),
        ],
        port: DOT_PORT,
        needs_config_id: false,
        description: "Unfiltered, no query logging retained beyond 25 hours",
    },
    Provider {
        id: "google",
        display_name: "Google Public DNS",
        auth_name: "dns.google",
        addresses: &[
            v4(8, 8, 8, 8),
            v4(8, 8, 4, 4),
            v6(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
            v6(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844),
        ],
        port: DOT_PORT,
        needs_config_id: false,
        description: "Unfiltered",
    },
    Provider {
        id: "quad9",
        display_name: "Quad9",
        auth_name: "dns.quad9.net",
        addresses: &[
            v4(9, 9, 9, 9),
            v4(149, 112, 112, 112),
            v6(0x2620, 0xfe, 0, 0, 0, 0, 0, 0xfe),
            v6(0x2620, 0xfe, 0, 0, 0, 0, 0, 0x9),
        ],
        port: DOT_PORT,
        needs_config_id: false,
        description: "Blocks known malicious domains",
    },
    Provider {
        id: "adguard",
        display_name: "AdGuard DNS",
        auth_name: "dns.adguard-dns.com",
        addresses: &[
            v4(94, 140, 14, 14),
            v4(94, 140, 15, 15),
            v6(0x2a10, 0x50c0, 0, 0, 0, 0, 0xad1, 0xff),
            v6(0x2a10, 0x50c0, 0, 0, 0, 0, 0xad2, 0xff),
        ],
        port: DOT_PORT,
        needs_config_id: false,
        description: "Blocks ads and trackers",
    },
    Provider {
        id: "mullvad",
        display_name: "Mullvad DNS",
        auth_name: "dns.mullvad.net",
        addresses: &[v4(194, 242, 2, 2), v6(0x2a07, 0xe340, 0, 0, 0, 0, 0, 0x2)],
        port: DOT_PORT,
        needs_config_id: false,
        description: "Unfiltered, no logging",
    },
    Provider {
        id: "cleanbrowsing",
        display_name: "CleanBrowsing Security",
        auth_name: "security-filter-dns.cleanbrowsing.org",
        addresses: &[
            v4(185, 228, 168, 9),
            v4(185, 228, 169, 9),
            v6(0x2a0d, 0x2a00, 0x1, 0, 0, 0, 0, 0x2),
            v6(0x2a0d, 0x2a00, 0x2, 0, 0, 0, 0, 0x2),
        ],
        port: DOT_PORT,
        needs_config_id: false,
        description: "Blocks malware and phishing domains",
    },
    Provider {
        id: "nextdns",
        display_name: "NextDNS",
        auth_name: "{id}.dns.nextdns.io",
        addresses: &[
            v4(45, 90, 28, 0),
            v4(45, 90, 30, 0),
            v6(0x2a07, 0xa8c0, 0, 0, 0, 0, 0, 0),
            v6(0x2a07, 0xa8c1, 0, 0, 0, 0, 0, 0),
        ],
        port: DOT_PORT,
        needs_config_id: true,
        description: "Filtering configured per user; needs your configuration ID",
    },
];

/// The provider used when none is chosen.
pub fn default_provider() -> &'static Provider {
    &PROVIDERS[0]
}

/// Looks a provider up by its identifier (case-insensitive).
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id.eq_ignore_ascii_case(id))
}

/// Whether `id` looks like a NextDNS configuration ID: NextDNS issues short
/// lower-case hexadecimal IDs; we accept 1–32 ASCII letters and digits so the
/// result is always a valid DNS label.
pub fn valid_config_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        let mut ids: Vec<_> = PROVIDERS.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), PROVIDERS.len(), "ids are unique");
        for p in PROVIDERS {
            assert!(!p.addresses.is_empty(), "{} has addresses", p.id);
            assert_ne!(p.port, 0);
            assert_eq!(p.needs_config_id, p.auth_name.contains("{id}"));
        }
        assert_eq!(find("Quad9").unwrap().auth_name, "dns.quad9.net");
        assert_eq!(default_provider().id, "cloudflare");
        assert!(valid_config_id("abc123"));
        assert!(!valid_config_id("ab.c"));
        assert!(!valid_config_id(""));
    }
}
