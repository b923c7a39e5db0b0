//! Tests of the wire parser and the messages built from it.

use super::*;

/// A query for `a.test. A` with ID 0x1234, optionally with an OPT record.
pub(crate) fn sample_query(edns: bool) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, edns as u8];
    q.extend_from_slice(b"\x01A\x04TEST\x00\x00\x01\x00\x01");
    if edns {
        // OPT: payload 4096, DO set, and a Client Subnet option (code 8)
        // that must not be forwarded.
        q.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 8]);
        q.extend_from_slice(&[0, 8, 0, 4, 0, 1, 24, 0]);
    }
    q
}

/// `sample_query(true)` with EDNS version `v` in its OPT record.
fn query_with_edns_version(v: u8) -> Vec<u8> {
    let mut q = sample_query(true);
    let opt = *Layout::parse(&q).unwrap().opt_record().unwrap();
    q[opt.ttl_at + 1] = v;
    q
}

#[test]
fn a_higher_edns_version_is_refused_with_badvers() {
    assert!(Query::parse(query_with_edns_version(0)).is_ok());
    let q = query_with_edns_version(1);
    assert_eq!(
        Query::parse(q.clone()).unwrap_err(),
        QueryError::UnsupportedEdnsVersion(1)
    );
    let r = badvers_response(&q);
    let layout = Layout::parse(&r).unwrap();
    assert_eq!(id(&r), 0x1234);
    assert!(is_response(&r));
    assert_eq!(
        &r[layout.question.clone()],
        &q[Layout::parse(&q).unwrap().question]
    );
    let opt = layout
        .opt_record()
        .expect("BADVERS travels in an OPT record");
    let [ext_rcode, version, flags_hi, _] = opt.ttl.to_be_bytes();
    // 16 = extended 1 << 4 | header 0.
    assert_eq!(rcode(&r), 0);
    assert_eq!(ext_rcode, 1);
    assert_eq!(version, EDNS_VERSION);
    assert_eq!(flags_hi & 0x80, 0x80, "DO copied from the query");
    assert_eq!(u16_at(&r, opt.type_at + 2).unwrap(), EDNS_UDP_SIZE);
    assert_eq!(opt.rdata_len, 0);
    // hickory reads the same message with the full RCODE 16 (which it
    // names BADSIG: IANA gives 16 to both).
    let parsed = hickory_proto::op::Message::from_vec(&r).unwrap();
    assert_eq!(u16::from(parsed.metadata.response_code), RCODE_BADVERS);
}

#[test]
fn the_client_gets_its_own_question_case_and_rd_bit_back() {
    // The cached answer was fetched for "a.test" with RD set.
    let mut cached = sample_query(false);
    cached[2] |= 0x80;
    let lower = cached[HEADER_LEN..].to_ascii_lowercase();
    cached[HEADER_LEN..].copy_from_slice(&lower);
    let cached_layout = Layout::parse(&cached).unwrap();
    // This client asks "A.TEST" (the sample's case) without RD.
    let mut asked = sample_query(false);
    asked[0..2].copy_from_slice(&[0xab, 0xcd]);
    asked[2] &= !0x01;
    let query = Query::parse(asked.clone()).unwrap();
    let out = response_for_client(&cached, &cached_layout, &query);
    let q = query.layout.question.clone();
    assert_eq!(&out[q.clone()], &asked[q], "question as the client sent it");
    assert_eq!(id(&out), 0xabcd);
    assert_eq!(out[2] & 0x01, 0, "RD as the client sent it");
    assert!(is_response(&out));
}

#[test]
fn clearing_ad_touches_only_that_bit() {
    let mut m = sample_query(false);
    m[2] = 0x81;
    m[3] = 0xB0; // RA, AD, CD
    let before = m.clone();
    clear_authentic_data(&mut m);
    assert_eq!(m[3], 0x90);
    assert_eq!(m[..3], before[..3]);
    assert_eq!(m[4..], before[4..]);
    clear_authentic_data(&mut []);
}

#[test]
fn parses_query_and_key_is_lowercase() {
    let q = Query::parse(sample_query(false)).unwrap();
    assert_eq!(q.key.name, b"\x01a\x04test\x00");
    assert_eq!(q.key.qtype, 1);
    assert_eq!(q.key.display_name(), "a.test.");
    assert!(!q.key.dnssec_ok);
}

#[test]
fn upstream_query_is_padded_to_block_and_drops_client_options() {
    let q = Query::parse(sample_query(true)).unwrap();
    assert!(q.key.dnssec_ok);
    let up = q.to_upstream(7, 128, true);
    assert_eq!(up.len() % 128, 0);
    assert_eq!(id(&up), 7);
    let layout = Layout::parse(&up).unwrap();
    let opt = layout.opt_record().unwrap();
    assert_eq!(opt.ttl & 0x8000, 0x8000, "DO bit kept");
    // Options: keepalive (empty) then padding; no subnet (code 8).
    assert_eq!(u16_at(&up, opt.rdata_at).unwrap(), OPT_TCP_KEEPALIVE);
    assert_eq!(u16_at(&up, opt.rdata_at + 4).unwrap(), OPT_PADDING);
    assert!(!up[opt.rdata_at..].windows(4).any(|w| w == [0, 8, 0, 4]));
}

#[test]
fn padding_zero_block_means_no_padding() {
    let q = Query::parse(sample_query(false)).unwrap();
    let up = q.to_upstream(1, 0, false);
    let layout = Layout::parse(&up).unwrap();
    assert_eq!(layout.opt_record().unwrap().rdata_len, 0);
}

#[test]
fn client_without_edns_gets_no_opt() {
    let q = Query::parse(sample_query(false)).unwrap();
    let mut resp = q.to_upstream(9, 128, true);
    resp[2] |= 0x80;
    let layout = Layout::parse(&resp).unwrap();
    let out = response_for_client(&resp, &layout, &q);
    let l2 = Layout::parse(&out).unwrap();
    assert!(l2.opt.is_none());
    assert_eq!(id(&out), 0x1234);
}

#[test]
fn keepalive_is_read() {
    let q = Query::parse(sample_query(false)).unwrap();
    let mut resp = q.to_upstream(9, 0, false);
    let n = resp.len();
    resp[n - 2..].copy_from_slice(&6u16.to_be_bytes());
    resp.extend_from_slice(&[0, 11, 0, 2, 1, 44]);
    let layout = Layout::parse(&resp).unwrap();
    assert_eq!(keepalive_timeout(&resp, &layout), Some(300));
}

#[test]
fn hostile_messages_are_errors_not_panics() {
    assert_eq!(Layout::parse(&[0; 5]), Err(WireError::ShortHeader));
    // Pointer to itself.
    let mut m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
    assert_eq!(Layout::parse(&m), Err(WireError::PointerLoop));
    // Claims an answer it does not hold.
    m = vec![0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(Layout::parse(&m), Err(WireError::Truncated));
    // Reserved label type.
    m = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1];
    assert_eq!(Layout::parse(&m), Err(WireError::BadName));
    // Trailing garbage.
    let mut q = sample_query(false);
    q.push(0);
    assert_eq!(Layout::parse(&q), Err(WireError::TrailingBytes));
    // Every prefix of a valid message is rejected cleanly.
    let q = sample_query(true);
    for n in 0..q.len() {
        assert!(Layout::parse(&q[..n]).is_err());
    }
}

#[test]
fn error_response_echoes_question() {
    let q = sample_query(false);
    let r = error_response(&q, RCODE_SERVFAIL);
    assert_eq!(rcode(&r), RCODE_SERVFAIL);
    assert!(is_response(&r));
    assert_eq!(id(&r), 0x1234);
    let l = Layout::parse(&r).unwrap();
    assert_eq!(l.qdcount, 1);
    assert_eq!(error_response(&[1], RCODE_FORMERR).len(), HEADER_LEN);
}

// ------------------------------------------------ one parser, RFC rules
//
// These pin the points on which the packet path's old DNS walker
// (packet/dns.rs) and this parser disagreed: a 256-octet name, forward,
// self and header pointers, and duplicate OPT records. Both now go through
// `walk_name`, so each is checked here and through the packet path's
// entry points.

/// A message whose question is the name `name` (wire form) of type A,
/// class IN, then `rest`; `counts` are ANCOUNT, NSCOUNT, ARCOUNT.
fn with_question(name: &[u8], counts: [u16; 3], rest: &[u8]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, 0x01, 0x00, 0, 1];
    for c in counts {
        m.extend_from_slice(&c.to_be_bytes());
    }
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(rest);
    m
}

/// The wire form of a name made of labels of the given lengths.
fn name_of(labels: &[usize]) -> Vec<u8> {
    let mut n = Vec::new();
    for &len in labels {
        n.push(len as u8);
        n.extend(std::iter::repeat_n(b'x', len));
    }
    n.push(0);
    n
}

/// An OPT record advertising `size`, root owner, no options.
const OPT_4096: [u8; 11] = [0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0];

/// An A record owned by the name at `owner` (a pointer).
fn a_record(owner: u16) -> Vec<u8> {
    let mut r = (0xC000 | owner).to_be_bytes().to_vec();
    r.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    r
}

#[test]
fn a_name_of_255_octets_is_accepted_and_one_of_256_refused() {
    let n255 = name_of(&[63, 63, 63, 61]);
    let n256 = name_of(&[63, 63, 63, 62]);
    assert_eq!((n255.len(), n256.len()), (255, 256));
    let ok = with_question(&n255, [0, 0, 1], &OPT_4096);
    let long = with_question(&n256, [0, 0, 1], &OPT_4096);

    assert!(Layout::parse(&ok).is_ok());
    let q = Query::parse(ok.clone()).unwrap();
    assert_eq!(q.key.name, n255);
    assert_eq!(Layout::parse(&long), Err(WireError::NameTooLong));
    assert_eq!(
        Query::parse(long.clone()).unwrap_err(),
        QueryError::Malformed(WireError::NameTooLong)
    );
    let mut out = Vec::new();
    assert_eq!(
        read_name_lower(&long, HEADER_LEN, &mut out),
        Err(WireError::NameTooLong)
    );
    assert!(out.is_empty(), "nothing of a refused name is kept");

    // The packet path reads the same: it trusts the 255-octet query's
    // EDNS size, not the 256-octet one's, and keeps only the former's
    // question when truncating.
    assert_eq!(crate::packet::client_udp_payload_limit(&ok), 4096);
    assert_eq!(crate::packet::client_udp_payload_limit(&long), 512);
    for (m, qd) in [(&ok, 1), (&long, 0)] {
        let mut big = m.clone();
        big[7] = 40; // ANCOUNT: 40 answers make it too big for 512
        big.truncate(HEADER_LEN + m.len() - HEADER_LEN - OPT_4096.len());
        big[11] = 0;
        for _ in 0..40 {
            big.extend_from_slice(&a_record(12));
        }
        let t = truncate_dns_response(&big, 512);
        assert_eq!(u16_at(&t, 4).unwrap(), qd);
        assert!(Layout::parse(&t).is_ok(), "what truncation keeps parses");
    }

    // The limit counts the name expanded through its pointers: an answer
    // owner of one 4-octet label plus the 253-octet question name behind a
    // pointer is 257 octets; with a 1-octet label, 254 + 2 = 255 is fine.
    let n253 = name_of(&[63, 63, 63, 59]);
    for (label, expect) in [(1, Ok(())), (2, Err(WireError::NameTooLong))] {
        let mut owner = vec![label as u8];
        owner.extend(std::iter::repeat_n(b'y', label));
        owner.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        let m = with_question(&n253, [1, 0, 0], &owner);
        assert_eq!(Layout::parse(&m).map(|_| ()), expect, "label of {label}");
    }
}

#[test]
fn forward_self_and_header_pointers_are_refused() {
    // Question name pointing at itself.
    let m = with_question(&[0xC0, 12], [0, 0, 0], &[]);
    assert_eq!(Layout::parse(&m), Err(WireError::PointerLoop));
    // A label, then a pointer back to the start of the same name.
    let m = with_question(&[1, b'a', 0xC0, 12], [0, 0, 0], &[]);
    assert_eq!(Layout::parse(&m), Err(WireError::PointerLoop));
    // Into the header (ID 0x0000 would read as the root there).
    let mut m = with_question(&[0xC0, 0], [0, 0, 0], &[]);
    m[..2].fill(0);
    assert_eq!(Layout::parse(&m), Err(WireError::PointerIntoHeader));
    // An answer owner pointing forward, at the next record's owner.
    let q = name_of(&[1]);
    let mut rest = a_record(12 + 3 + 4 + 16);
    rest.extend_from_slice(&a_record(12));
    let m = with_question(&q, [2, 0, 0], &rest);
    assert_eq!(Layout::parse(&m), Err(WireError::PointerLoop));
    // The same message with the first owner pointing back is fine.
    let mut fixed = m.clone();
    fixed[12 + 3 + 4 + 1] = 12;
    assert!(Layout::parse(&fixed).is_ok());
    // A pointer back to bytes that run into the name that pointed there:
    // q2 at 19 points to 16, whose "labels" cross offset 19.
    let mut m = vec![0, 1, 0x81, 0x80, 0, 2, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[1, b'a', 0, 0, 2, 0, 1]); // q1 "a." type 2
    m.extend_from_slice(&[0xC0, 16, 0, 1, 0, 1]);
    assert_eq!(Layout::parse(&m), Err(WireError::PointerLoop));

    // The packet path refuses them the same way.
    let mut q = with_question(&[0xC0, 12], [0, 0, 1], &OPT_4096);
    assert_eq!(crate::packet::client_udp_payload_limit(&q), 512);
    q.splice(12..14, [0]);
    assert_eq!(crate::packet::client_udp_payload_limit(&q), 4096);
}

#[test]
fn backward_pointers_are_followed_with_a_bounded_hop_count() {
    // "b" + pointer to the question "a.test": b.a.test.
    let q = b"\x01A\x04TEST\x00";
    let owner = [1, b'B', 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
    let m = with_question(q, [1, 0, 0], &owner);
    let layout = Layout::parse(&m).unwrap();
    let mut name = Vec::new();
    read_name_lower(&m, layout.records[0].start, &mut name).unwrap();
    assert_eq!(name, b"\x01b\x01a\x04test\x00");
    assert_eq!(
        skip_name(&m, layout.records[0].start),
        Ok(layout.records[0].type_at)
    );

    // A chain of pointers, each to the one before, ending at "x.": every
    // target is prior, so only the hop count stops a long chain.
    let chain = |hops: usize| {
        let mut m = vec![0; HEADER_LEN];
        m.extend_from_slice(&[1, b'x', 0]);
        let mut prev = HEADER_LEN;
        for _ in 0..hops {
            let at = m.len();
            m.extend_from_slice(&(0xC000 | prev as u16).to_be_bytes());
            prev = at;
        }
        (m, prev)
    };
    let (m, last) = chain(MAX_POINTER_HOPS);
    let mut name = Vec::new();
    read_name_lower(&m, last, &mut name).unwrap();
    assert_eq!(name, b"\x01x\x00");
    assert_eq!(skip_name(&m, last), Ok(last + 2));
    let (m, last) = chain(MAX_POINTER_HOPS + 1);
    assert_eq!(skip_name(&m, last), Err(WireError::TooManyPointers));
}

#[test]
fn duplicate_opt_is_refused_and_answered_with_formerr() {
    let one = with_question(b"\x01a\x00", [0, 0, 1], &OPT_4096);
    let two = with_question(b"\x01a\x00", [0, 0, 2], &[OPT_4096, OPT_4096].concat());
    assert!(Layout::parse(&one).unwrap().opt.is_some());
    assert_eq!(Layout::parse(&two), Err(WireError::DuplicateOpt));
    let err = Query::parse(two.clone()).unwrap_err();
    assert_eq!(err, QueryError::Malformed(WireError::DuplicateOpt));
    // The packet path no longer trusts the first of two OPT records.
    assert_eq!(crate::packet::client_udp_payload_limit(&one), 4096);
    assert_eq!(crate::packet::client_udp_payload_limit(&two), 512);
    // What the resolver sends back for a malformed query.
    let r = error_response(&two, RCODE_FORMERR);
    assert!(is_response(&r));
    assert_eq!((id(&r), rcode(&r)), (0xabcd, RCODE_FORMERR));
    assert!(Layout::parse(&r).is_ok());
}

#[test]
fn opt_records_must_be_owned_by_the_root_and_sit_in_the_additional_section() {
    // In the answer section.
    let m = with_question(b"\x01a\x00", [1, 0, 0], &OPT_4096);
    assert_eq!(Layout::parse(&m), Err(WireError::BadOpt));
    // Owned by "a." (written out, then by pointer).
    let mut owned = vec![1, b'a', 0];
    owned.extend_from_slice(&OPT_4096[1..]);
    let m = with_question(b"\x01a\x00", [0, 0, 1], &owned);
    assert_eq!(Layout::parse(&m), Err(WireError::BadOpt));
    let mut by_pointer = vec![0xC0, 12];
    by_pointer.extend_from_slice(&OPT_4096[1..]);
    let m = with_question(b"\x01a\x00", [0, 0, 1], &by_pointer);
    assert_eq!(Layout::parse(&m), Err(WireError::BadOpt));
    // Owned by the root reached through a pointer: odd, but the root.
    let mut m = with_question(b"\x01a\x00", [0, 0, 1], &[]);
    m.extend_from_slice(&[0xC0, 14]);
    m.extend_from_slice(&OPT_4096[1..]);
    assert!(Layout::parse(&m).unwrap().opt.is_some());
    // Truncation writes that OPT record back with a plain root owner.
    let mut big = m.clone();
    big[7] = 40;
    let opt_at = m.len() - OPT_4096.len() - 1;
    let opt = big.split_off(opt_at);
    for _ in 0..40 {
        big.extend_from_slice(&a_record(12));
    }
    big.extend_from_slice(&opt);
    assert!(Layout::parse(&big).is_ok());
    let t = truncate_dns_response(&big, 512);
    assert_eq!(&t[t.len() - OPT_4096.len()..], &OPT_4096[..]);
    assert!(Layout::parse(&t).unwrap().opt.is_some());
}
