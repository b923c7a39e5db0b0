//! Arbitrary bytes as the DNS payload of a packet from the tunnel: what the
//! resolver does to a client's message before any network I/O (reading the
//! layout and the question, rewriting for upstream, error answers, fitting
//! an answer back to the client) must never panic, and what it builds must
//! read back.

#![no_main]

use dotcore::internals::packet::client_udp_payload_limit;
use dotcore::internals::wire::{
    badvers_response, error_response, keepalive_timeout, response_for_client, Layout, Query,
    QuestionKey, HEADER_LEN, RCODE_BADVERS, RCODE_FORMERR, RCODE_SERVFAIL,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(layout) = Layout::parse(data) {
        let _ = QuestionKey::of(data, &layout);
        let _ = keepalive_timeout(data, &layout);
    }
    for rcode in [RCODE_FORMERR, RCODE_SERVFAIL] {
        let e = error_response(data, rcode);
        assert!(e.len() >= HEADER_LEN);
        assert_eq!(e[2] & 0x80, 0x80, "an error response is a response");
        assert!(Layout::parse(&e).is_ok(), "error response does not parse");
    }
    let b = badvers_response(data);
    let layout = Layout::parse(&b).expect("BADVERS response does not parse");
    let opt = layout.opt_record().expect("BADVERS response without OPT");
    assert_eq!(opt.ttl >> 24, u32::from(RCODE_BADVERS >> 4));
    let Ok(query) = Query::parse(data.to_vec()) else {
        return;
    };
    assert!(client_udp_payload_limit(&query.bytes) >= 512);
    let _ = query.has_edns();
    for (block, keepalive) in [(0, false), (128, true), (468, false)] {
        let upstream = query.to_upstream(0x1234, block, keepalive);
        let layout = Layout::parse(&upstream).expect("upstream query does not parse");
        assert_eq!(upstream[..2], [0x12, 0x34]);
        if block > 0 {
            assert_eq!(upstream.len() % block, 0, "padding to {block}");
        }
        // The same bytes, read as if they were the server's answer, fitted
        // back for the client.
        let back = response_for_client(&upstream, &layout, &query);
        assert_eq!(back[..2], data[..2], "client ID restored");
    }
});
