//! Fitting a response into a UDP client's buffer (RFC 1035 §4.2.1, RFC 6891
//! §6.2.3, RFC 7766): upstream (DNS over TLS) answers may be up to 64 KiB,
//! but a UDP client only takes 512 bytes unless its OPT record said more,
//! and an answer that does not fit is replaced by a truncated one (TC set)
//! so that the client retries over TCP.

use super::{question_end, u16_at, Layout, HEADER_LEN};

const TC_BIT: u8 = 0x02;

/// The UDP payload size `msg` advertises in its OPT record's CLASS field
/// (RFC 6891 §6.2.3), as sent; `None` without an OPT record or when `msg`
/// is not a well-formed message (then nothing it says can be trusted).
pub fn advertised_udp_payload(msg: &[u8]) -> Option<u16> {
    let layout = Layout::parse(msg).ok()?;
    let opt = layout.opt_record()?;
    u16_at(msg, opt.type_at + 2).ok()
}

/// Fits `response` into `limit` bytes for a UDP client.
///
/// A response that already fits is returned unchanged. Otherwise the result
/// is the header with TC set, the question section and, if it fits, the OPT
/// record (so extended RCODE and EDNS flags survive; shorn of its options
/// when only that fits), with every other record dropped: the client then
/// retries over TCP. A question section that does not parse, or does not
/// fit, is dropped too (QDCOUNT 0), and the OPT record is kept only from a
/// response that parses whole; a response shorter than a DNS header gives
/// an empty result, as there is nothing to salvage.
pub fn truncate_dns_response(response: &[u8], limit: usize) -> Vec<u8> {
    if response.len() <= limit {
        return response.to_vec();
    }
    let Some(header) = response.first_chunk::<HEADER_LEN>() else {
        return Vec::new();
    };
    // The name rules make every pointer in the question section point
    // inside it, so the section can be copied on its own.
    let questions = question_end(response)
        .ok()
        .filter(|&end| end <= limit)
        .and_then(|end| response.get(HEADER_LEN..end));

    let mut out = Vec::with_capacity(limit.min(response.len()).max(HEADER_LEN));
    let mut h = *header;
    h[2] |= TC_BIT;
    if questions.is_none() {
        h[4..6].fill(0);
    }
    h[6..12].fill(0);
    out.extend_from_slice(&h);
    out.extend_from_slice(questions.unwrap_or_default());

    let layout = Layout::parse(response).ok();
    if let Some(opt) = layout.as_ref().and_then(Layout::opt_record) {
        // A fresh root owner: the original may be a pointer, which would
        // mean something else at its new offset. Then TYPE, CLASS and TTL.
        let fixed = response.get(opt.type_at..opt.type_at + 8);
        let rdata = response.get(opt.rdata_at - 2..opt.end());
        if let (Some(fixed), Some(rdata)) = (fixed, rdata) {
            if out.len() + 1 + fixed.len() + rdata.len() <= limit {
                out.push(0);
                out.extend_from_slice(fixed);
                out.extend_from_slice(rdata);
                set_arcount(&mut out);
            } else if out.len() + 1 + fixed.len() + 2 <= limit {
                out.push(0);
                out.extend_from_slice(fixed);
                out.extend_from_slice(&[0, 0]);
                set_arcount(&mut out);
            }
        }
    }
    out
}

fn set_arcount(out: &mut [u8]) {
    if let Some(ar) = out.get_mut(10..12) {
        ar.copy_from_slice(&1u16.to_be_bytes());
    }
}
