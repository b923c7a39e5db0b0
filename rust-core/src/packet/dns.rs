//! The two pieces of DNS message parsing the UDP path needs: how large a
//! reply the client accepts, and how to cut a reply down to that size.
//!
//! Upstream (DNS over TLS) answers may be up to 64 KiB, but a UDP client only
//! accepts 512 bytes unless it said otherwise with EDNS (RFC 6891), and an
//! oversized answer must be replaced by a truncated one (TC set) so the
//! client retries over TCP (RFC 1035 section 4.2.1, RFC 7766).

use std::ops::Range;

use super::build::MAX_UDP_PAYLOAD_V4;

const HEADER_LEN: usize = 12;
const TYPE_OPT: u16 = 41;
const TC_BIT: u8 = 0x02;
const MIN_UDP_PAYLOAD: usize = 512;
/// RFC 1035 section 3.1: 255 octets per name on the wire.
const MAX_NAME_LEN: usize = 255;
/// Type, class, TTL and RDLENGTH after an owner name.
const RR_FIXED_LEN: usize = 10;

/// The largest DNS response a UDP client can be sent.
///
/// Without EDNS that is 512 bytes; with an OPT record it is the advertised
/// size, raised to 512 (RFC 6891 section 6.2.3) and capped so that the reply
/// fits in one IPv4 UDP datagram. A malformed query gets 512: whatever
/// it advertised cannot be trusted. Callers may lower it further (TUN MTU).
pub fn client_udp_payload_limit(query: &[u8]) -> usize {
    // The OPT record's CLASS field, after the root owner byte and the type.
    let advertised = find_opt(query)
        .and_then(|opt| query.get(opt.start + 3..))
        .and_then(|rest| rest.first_chunk::<2>())
        .map_or(0, |class| usize::from(u16::from_be_bytes(*class)));
    advertised.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD_V4)
}

/// Fits `response` into `limit` bytes for a UDP client.
///
/// A response that already fits is returned unchanged. Otherwise the result
/// is the header with TC set, the question section and, if it fits, the OPT
/// record (so extended RCODE and EDNS flags survive), with every other record
/// dropped: the client then retries over TCP. If the question section cannot
/// be parsed safely it is dropped too (QDCOUNT 0); a response shorter than a
/// DNS header gives an empty result, as there is nothing to salvage.
pub fn truncate_dns_response(response: &[u8], limit: usize) -> Vec<u8> {
    if response.len() <= limit {
        return response.to_vec();
    }
    let Some(header) = response.first_chunk::<HEADER_LEN>() else {
        return Vec::new();
    };
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let questions = skip_questions(response, qdcount, true)
        .filter(|&end| end <= limit)
        .and_then(|end| response.get(HEADER_LEN..end));

    let mut out = Vec::with_capacity(limit.min(response.len()).max(HEADER_LEN));
    let mut h = *header;
    h[2] |= TC_BIT;
    let kept_qd = if questions.is_some() { qdcount } else { 0 };
    h[4..6].copy_from_slice(&kept_qd.to_be_bytes());
    h[6..12].fill(0);
    out.extend_from_slice(&h);
    out.extend_from_slice(questions.unwrap_or_default());

    if let Some(opt) = find_opt(response).and_then(|r| response.get(r)) {
        // Root owner (1), type, class, TTL: everything but the options.
        let fixed = opt.get(..1 + RR_FIXED_LEN - 2);
        if out.len() + opt.len() <= limit {
            out.extend_from_slice(opt);
            set_arcount(&mut out);
        } else if let Some(fixed) = fixed.filter(|f| out.len() + f.len() + 2 <= limit) {
            out.extend_from_slice(fixed);
            out.extend_from_slice(&[0, 0]);
            set_arcount(&mut out);
        }
    }
    out
}

fn set_arcount(out: &mut [u8]) {
    if let Some(ar) = out.get_mut(10..12) {
        ar.copy_from_slice(&1u16.to_be_bytes());
    }
}

/// Finds the first OPT record with the root owner in the additional section,
/// walking the whole message before it with bounds checks.
fn find_opt(msg: &[u8]) -> Option<Range<usize>> {
    let h = msg.first_chunk::<HEADER_LEN>()?;
    let qd = u16::from_be_bytes([h[4], h[5]]);
    let an = u16::from_be_bytes([h[6], h[7]]);
    let ns = u16::from_be_bytes([h[8], h[9]]);
    let ar = u16::from_be_bytes([h[10], h[11]]);
    let mut pos = skip_questions(msg, qd, false)?;
    for _ in 0..u32::from(an) + u32::from(ns) {
        pos = skip_rr(msg, pos)?.end;
    }
    for _ in 0..ar {
        let rr = skip_rr(msg, pos)?;
        let owner_is_root = msg.get(pos) == Some(&0);
        let rtype = msg.get(rr.fixed..)?.first_chunk::<2>()?;
        if owner_is_root && u16::from_be_bytes(*rtype) == TYPE_OPT {
            return Some(pos..rr.end);
        }
        pos = rr.end;
    }
    None
}

struct RrBounds {
    /// Where the type field starts.
    fixed: usize,
    /// One past the RDATA.
    end: usize,
}

fn skip_rr(msg: &[u8], pos: usize) -> Option<RrBounds> {
    let fixed = skip_name(msg, pos)?;
    let f = msg.get(fixed..)?.first_chunk::<RR_FIXED_LEN>()?;
    let rdlen = usize::from(u16::from_be_bytes([f[8], f[9]]));
    let end = fixed + RR_FIXED_LEN + rdlen;
    (end <= msg.len()).then_some(RrBounds { fixed, end })
}

/// Returns the end of the question section; with `follow_pointers`, also
/// checks that every compression pointer resolves safely within the section,
/// so the section can be copied on its own.
fn skip_questions(msg: &[u8], qdcount: u16, follow_pointers: bool) -> Option<usize> {
    let mut pos = HEADER_LEN;
    // Each question takes at least five bytes, so a lying count runs out of
    // message long before it runs out of iterations.
    for _ in 0..qdcount {
        if follow_pointers {
            check_name(msg, pos)?;
        }
        pos = skip_name(msg, pos)? + 4;
        if pos > msg.len() {
            return None;
        }
    }
    Some(pos)
}

/// Returns the offset after the name at `pos`, without following pointers,
/// so it cannot loop; rejects reserved label types and overlong names.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    let mut wire_len = 0;
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => {
                let label = usize::from(len) + 1;
                wire_len += label;
                if wire_len >= MAX_NAME_LEN {
                    return None;
                }
                pos += label;
            }
            0xc0 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Follows the name at `start` through its compression pointers, so that a
/// copy of the question section on its own stays well-formed.
///
/// Each pointer must land after the header and strictly before the previous
/// jump target (real compressors only refer back, and strictly decreasing
/// targets cannot loop), and the name it points to must end before the
/// pointer itself; the expanded name must respect the 255-byte limit.
fn check_name(msg: &[u8], start: usize) -> Option<()> {
    let mut pos = start;
    let mut limit = msg.len();
    let mut bound = start;
    let mut expanded = 0;
    loop {
        if pos >= limit {
            return None;
        }
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(()),
            0x00 => {
                let label = usize::from(len) + 1;
                expanded += label;
                if expanded >= MAX_NAME_LEN {
                    return None;
                }
                pos += label;
            }
            0xc0 => {
                if pos + 1 >= limit {
                    return None;
                }
                let low = *msg.get(pos + 1)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target < HEADER_LEN || target >= bound {
                    return None;
                }
                limit = pos;
                bound = target;
                pos = target;
            }
            _ => return None,
        }
    }
}
