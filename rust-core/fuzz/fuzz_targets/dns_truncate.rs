//! Arbitrary bytes as a DNS message: reading the EDNS payload size and
//! truncating must never panic, and truncation must honour its limit.

#![no_main]

use dotcore::internals::packet::{client_udp_payload_limit, truncate_dns_response, MAX_UDP_PAYLOAD_V4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let advertised = client_udp_payload_limit(data);
    assert!((512..=MAX_UDP_PAYLOAD_V4).contains(&advertised));

    // The advertised limit rarely bites on small inputs, so also try limits
    // that force truncation, one of them chosen by the input itself.
    let chosen = data.first().map_or(0, |b| usize::from(*b));
    for limit in [advertised, 0, 12, 17, chosen, data.len().saturating_sub(1)] {
        let t = truncate_dns_response(data, limit);
        if data.len() <= limit {
            assert_eq!(t, data);
        } else if data.len() < 12 {
            assert!(t.is_empty());
        } else {
            assert!(t.len() <= limit.max(12), "{} > {limit}", t.len());
            assert_eq!(t.get(..2), data.get(..2), "ID changed");
            assert_eq!(t.get(2).map(|f| f & 0x02), Some(0x02), "TC not set");
            // The result is a message the helpers accept as it stands.
            client_udp_payload_limit(&t);
            if limit >= 12 {
                assert_eq!(truncate_dns_response(&t, limit), t);
            }
        }
    }
});
