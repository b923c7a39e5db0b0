//! This parser against hickory-proto's `Message::from_vec`, for the fuzz
//! target `wire_vs_hickory` and the stable test that runs the same
//! comparison over a fixed corpus (feature `fuzzing`, or tests). Not a
//! supported API.
//!
//! On a message both accept, they must agree on every header field, the
//! counts, each question (name compared case-insensitively, type, class),
//! each record's owner, type, class and TTL, and the EDNS fields. Where
//! only one accepts, the reason must be one of the deliberate differences
//! of [`Difference`]; anything else panics with both verdicts, which is
//! the bug the fuzzer looks for.

use hickory_proto::op::Message;
use hickory_proto::rr::Name;

use super::{opcode, read_name_lower, skip_name, u16_at, Layout, WireError, HEADER_LEN, TYPE_OPT};

/// A documented reason for the two parsers to differ on acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Difference {
    /// We refuse bytes after the last record the header announced; hickory
    /// stops reading there. A frame that says more than it holds is not a
    /// message the engine acts on.
    TrailingBytes,
    /// We refuse a compression pointer into the 12-byte header, which holds
    /// no name (RFC 1035 §4.1.4: a pointer goes to a prior occurrence of a
    /// name); hickory reads header bytes as labels.
    PointerIntoHeader,
    /// We refuse a name that follows more than
    /// [`MAX_POINTER_HOPS`](super::MAX_POINTER_HOPS) pointers; hickory has
    /// no such bound (its strictly-prior rule alone ends the walk).
    TooManyPointers,
    /// Hickory decodes RDATA by type (names inside it, address lengths, EDNS
    /// options, SIG and TSIG placement) and refuses empty RDATA outside
    /// UPDATE messages (RFC 2136 gives RDLENGTH 0 a meaning there); we keep
    /// RDATA opaque and forward it unchanged, as RFC 3597 §3 asks of a
    /// resolver for types it does not know. Shown by hickory accepting the
    /// same message with every record's type made one it does not know
    /// and the opcode made UPDATE (see `opaque_rdata`).
    Rdata,
}

/// How the two parsers judged one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Both accepted it, and agree on what it says.
    BothAccept,
    /// Both refused it.
    BothRefuse,
    /// One refused it, for a documented reason.
    Deliberate(Difference),
}

const OPCODE_UPDATE: u8 = 5;

/// Compares the two parsers on `msg`; panics on an undocumented difference.
pub fn compare(msg: &[u8]) -> Outcome {
    let ours = Layout::parse(msg);
    let theirs = Message::from_vec(msg);
    match (ours, theirs) {
        (Ok(layout), Ok(message)) => {
            agree(msg, &layout, &message);
            Outcome::BothAccept
        }
        (Err(_), Err(_)) => Outcome::BothRefuse,
        (Err(e), Ok(_)) => match e {
            WireError::TrailingBytes => Outcome::Deliberate(Difference::TrailingBytes),
            WireError::PointerIntoHeader => Outcome::Deliberate(Difference::PointerIntoHeader),
            WireError::TooManyPointers => Outcome::Deliberate(Difference::TooManyPointers),
            e => panic!("we refuse ({e}) what hickory accepts: {msg:02x?}"),
        },
        (Ok(layout), Err(e)) => {
            let opaque = opaque_rdata(msg, &layout);
            if let Err(again) = Message::from_vec(&opaque) {
                panic!(
                    "hickory refuses ({e}; with opaque RDATA: {again}) what we accept: {msg:02x?}"
                );
            }
            Outcome::Deliberate(Difference::Rdata)
        }
    }
}

/// `msg` with every record's type made one whose RDATA hickory reads as
/// opaque bytes, and the opcode made UPDATE (where empty RDATA is allowed).
///
/// Names may read through a record's TYPE field (a pointer can land
/// anywhere prior), so the octets some name reads as a label length or a
/// pointer are kept and only the others changed: to a private-use type
/// (RFC 6895 §3.1), or one of the same high or low octet that hickory
/// does not know.
fn opaque_rdata(msg: &[u8], layout: &Layout) -> Vec<u8> {
    let mut structural = vec![false; msg.len()];
    let mut starts = vec![HEADER_LEN];
    let mut at = HEADER_LEN;
    for _ in 0..u16_at(msg, 4).unwrap_or(0) {
        match skip_name(msg, at) {
            Ok(end) => at = end + 4,
            Err(_) => break,
        }
        starts.push(at);
    }
    starts.pop();
    starts.extend(layout.records.iter().map(|r| r.start));
    for start in starts {
        let _ = super::name::walk_name_marking(msg, start, None, |i| {
            if let Some(s) = structural.get_mut(i) {
                *s = true;
            }
        });
    }
    let mut out = msg.to_vec();
    for r in &layout.records {
        let (hi, lo) = (structural[r.type_at], structural[r.type_at + 1]);
        let [old_hi, old_lo] = [msg[r.type_at], msg[r.type_at + 1]];
        let new = match (hi, lo) {
            (false, false) => [0xFF, 0x00],
            // 0x00C8..=0x3FC8: no type hickory knows.
            (true, false) if old_hi < 0x40 => [old_hi, 0xC8],
            // 0xFE00..=0xFEFF: none either.
            (false, true) => [0xFE, old_lo],
            // A pointer's two octets: 0xC000 and up, opaque already (all
            // but 65305), or two names reading it: left as it is.
            _ => [old_hi, old_lo],
        };
        out[r.type_at..r.type_at + 2].copy_from_slice(&new);
    }
    out[2] = (out[2] & !0x78) | (OPCODE_UPDATE << 3);
    out
}

/// The lower-cased wire form of a hickory name, comparable with ours.
fn wire_name(name: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

fn our_name(msg: &[u8], at: usize) -> Vec<u8> {
    let mut out = Vec::new();
    read_name_lower(msg, at, &mut out).expect("a name Layout::parse accepted");
    out
}

fn agree(msg: &[u8], layout: &Layout, m: &Message) {
    let h = &m.metadata;
    let bit = |byte: usize, mask: u8| msg[byte] & mask != 0;
    assert_eq!(h.id, u16_at(msg, 0).unwrap(), "ID");
    assert_eq!(
        h.message_type == hickory_proto::op::MessageType::Response,
        bit(2, 0x80),
        "QR"
    );
    assert_eq!(u8::from(h.op_code), opcode(msg), "opcode");
    assert_eq!(h.authoritative, bit(2, 0x04), "AA");
    assert_eq!(h.truncation, bit(2, 0x02), "TC");
    assert_eq!(h.recursion_desired, bit(2, 0x01), "RD");
    assert_eq!(h.recursion_available, bit(3, 0x80), "RA");
    assert_eq!(h.authentic_data, bit(3, 0x20), "AD");
    assert_eq!(h.checking_disabled, bit(3, 0x10), "CD");
    let opt = layout.opt_record();
    let ext_rcode = opt.map_or(0, |o| (o.ttl >> 24) as u16);
    assert_eq!(
        u16::from(h.response_code),
        (ext_rcode << 4) | u16::from(msg[3] & 0x0F),
        "RCODE with its EDNS high bits"
    );

    // Counts.
    let count = |at| usize::from(u16_at(msg, at).unwrap());
    assert_eq!(m.queries.len(), count(4), "QDCOUNT");
    assert_eq!(m.answers.len(), count(6), "ANCOUNT");
    assert_eq!(m.authorities.len(), count(8), "NSCOUNT");
    assert_eq!(
        m.additionals.len() + usize::from(m.edns.is_some()),
        count(10),
        "ARCOUNT"
    );

    // Questions.
    let mut at = HEADER_LEN;
    for q in &m.queries {
        assert_eq!(wire_name(&q.name), our_name(msg, at), "QNAME");
        let after = skip_name(msg, at).unwrap();
        assert_eq!(
            u16::from(q.query_type),
            u16_at(msg, after).unwrap(),
            "QTYPE"
        );
        assert_eq!(
            u16::from(q.query_class),
            u16_at(msg, after + 2).unwrap(),
            "QCLASS"
        );
        at = after + 4;
    }
    assert_eq!(at, layout.question.end, "end of the question section");

    // Records, OPT apart.
    let theirs = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
    let ours = layout.records.iter().filter(|r| r.rtype != TYPE_OPT);
    assert_eq!(ours.clone().count(), theirs.clone().count(), "records");
    for (r, t) in ours.zip(theirs) {
        assert_eq!(wire_name(&t.name), our_name(msg, r.start), "owner");
        assert_eq!(u16::from(t.record_type()), r.rtype, "TYPE");
        assert_eq!(
            u16::from(t.dns_class),
            u16_at(msg, r.type_at + 2).unwrap(),
            "CLASS"
        );
        assert_eq!(t.ttl, r.ttl, "TTL");
    }

    // EDNS.
    assert_eq!(m.edns.is_some(), opt.is_some(), "OPT record");
    if let (Some(e), Some(o)) = (&m.edns, opt) {
        let [high, version, flags, _] = o.ttl.to_be_bytes();
        assert_eq!(e.rcode_high(), high, "extended RCODE");
        assert_eq!(e.version(), version, "EDNS version");
        assert_eq!(e.flags().dnssec_ok, flags & 0x80 != 0, "DO");
        let size = u16_at(msg, o.type_at + 2).unwrap();
        // RFC 6891 §6.2.5: hickory stores sizes below 512 as 512.
        assert_eq!(e.max_payload(), size.max(512), "UDP payload size");
    }
}

#[cfg(test)]
mod tests {
    //! The comparison of the fuzz target, run over a fixed corpus so that
    //! it runs in CI without nightly: crafted messages, the fuzz seeds, and
    //! deterministic mutations of them.

    use std::collections::HashMap;

    use super::*;

    /// Deterministic pseudo-random numbers (Knuth's MMIX LCG).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            m.extend_from_slice(&c.to_be_bytes());
        }
        m
    }

    fn rr(m: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
        m.extend_from_slice(owner);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }

    /// Hand-made messages of the shapes the engine sees, with compression
    /// in owners and RDATA, EDNS options, several sections and questions.
    fn crafted_only() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        // www.Example.COM A, RD, EDNS with DO and a keepalive option.
        let mut q = header(0x0102, 0x0100, [1, 0, 0, 1]);
        q.extend_from_slice(b"\x03www\x07Example\x03COM\x00\x00\x01\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 4, 0, 11, 0, 0]);
        out.push(q.clone());
        // The same without EDNS.
        let mut plain = q[..q.len() - 15].to_vec();
        plain[11] = 0;
        out.push(plain);
        // A response: CNAME chain, SOA in authority, OPT with padding and
        // an extended RCODE, names compressed against each other.
        let mut r = header(0x0102, 0x8580, [1, 2, 1, 2]);
        r.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        let cname_at = r.len() + 12;
        rr(&mut r, &[0xC0, 12], 5, 300, b"\x03web\xC0\x10");
        rr(
            &mut r,
            &(0xC000 | cname_at as u16).to_be_bytes(),
            1,
            60,
            &[192, 0, 2, 7],
        );
        let mut soa = b"\x03ns1\xC0\x10\x0ahostmaster\xC0\x10".to_vec();
        soa.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 2, 0x58]);
        soa.extend_from_slice(&[0, 9, 0x3a, 0x80, 0, 0, 1, 0x2c]);
        rr(&mut r, &[0xC0, 0x10], 6, 3600, &soa);
        rr(
            &mut r,
            b"\x03ns1\xC0\x10",
            28,
            60,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        r.extend_from_slice(&[
            0, 0, 41, 0x04, 0xd0, 1, 0, 0x80, 0, 0, 8, 0, 12, 0, 4, 0, 0, 0, 0,
        ]);
        out.push(r);
        // Two questions, the second compressed; MX and TXT answers.
        let mut two = header(7, 0x8180, [2, 2, 0, 0]);
        two.extend_from_slice(b"\x07example\x03org\x00\x00\x0f\x00\x01");
        two.extend_from_slice(b"\x04mail\xC0\x0c\x00\x10\x00\x01");
        rr(&mut two, &[0xC0, 12], 15, 300, b"\x00\x0a\x04mail\xC0\x0c");
        rr(&mut two, &[0xC0, 29], 16, 300, b"\x0bhello world\x03abc");
        out.push(two);
        // NXDOMAIN, no question echo trouble: root question, empty answer.
        let mut nx = header(9, 0x8183, [1, 0, 0, 0]);
        nx.extend_from_slice(&[0, 0, 2, 0, 1]);
        out.push(nx);
        out
    }

    /// [`crafted_only`] and the fuzz seeds (one has trailing padding).
    fn crafted() -> Vec<Vec<u8>> {
        let mut out = crafted_only();
        for seed in [
            &include_bytes!("../../fuzz/seeds/dns_query/query_edns")[..],
            include_bytes!("../../fuzz/seeds/dns_query/query_plain"),
            include_bytes!("../../fuzz/seeds/dns_truncate/query_edns"),
            include_bytes!("../../fuzz/seeds/dns_truncate/response_many_answers_edns"),
            include_bytes!("../../fuzz/seeds/dns_truncate/response_padding_opt"),
            include_bytes!("../../fuzz/seeds/dns_truncate/response_two_questions_compressed"),
        ] {
            out.push(seed.to_vec());
        }
        out
    }

    /// One random edit of the kinds that reach parser corners.
    fn mutate(m: &mut Vec<u8>, rng: &mut Lcg) {
        let len = m.len();
        match rng.below(9) {
            0 if len > 0 => m[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => m[rng.below(len)] = rng.next() as u8,
            // A compression pointer to anywhere, often backwards.
            2 if len > 1 => {
                let at = rng.below(len - 1);
                let target = rng.below(len + 8) as u16;
                m[at..at + 2].copy_from_slice(&(0xC000 | target).to_be_bytes());
            }
            // A label length, including the reserved forms.
            3 if len > 0 => {
                let lengths = [0u8, 1, 2, 63, 0x40, 0x80, 0xC0];
                m[rng.below(len)] = lengths[rng.below(lengths.len())];
            }
            4 => m.truncate(rng.below(len + 1)),
            5 => {
                for _ in 0..=rng.below(4) {
                    m.push(rng.next() as u8);
                }
            }
            // A header count, up or down by a little or to anything.
            6 if len >= HEADER_LEN => {
                let at = 4 + 2 * rng.below(4);
                let count = u16::from_be_bytes([m[at], m[at + 1]]);
                let new = match rng.below(3) {
                    0 => count.wrapping_add(1),
                    1 => count.wrapping_sub(1),
                    _ => rng.next() as u16,
                };
                m[at..at + 2].copy_from_slice(&new.to_be_bytes());
            }
            7 if len > 0 => {
                m.remove(rng.below(len));
            }
            _ => m.insert(rng.below(len + 1), rng.next() as u8),
        }
    }

    #[test]
    fn wire_and_hickory_agree_on_a_mutated_corpus() {
        let seeds = crafted();
        let mut outcomes: HashMap<Outcome, usize> = HashMap::new();
        for seed in crafted_only() {
            assert_eq!(compare(&seed), Outcome::BothAccept, "seed {seed:02x?}");
        }
        let mut rng = Lcg(0x0dd5_eed5);
        for i in 0..60_000 {
            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut m, &mut rng);
            }
            let outcome = std::panic::catch_unwind(|| compare(&m))
                .unwrap_or_else(|_| panic!("parsers disagree on input {i}: {m:02x?}"));
            *outcomes.entry(outcome).or_default() += 1;
        }
        // Not a vacuous comparison: many mutants still parse, many do not.
        let both = outcomes.get(&Outcome::BothAccept).copied().unwrap_or(0);
        let refused = outcomes.get(&Outcome::BothRefuse).copied().unwrap_or(0);
        assert!(both > 4_000 && refused > 4_000, "{outcomes:?}");
    }

    #[test]
    fn each_deliberate_difference_is_recognised() {
        let mut q = header(0, 0x0100, [1, 0, 0, 0]);
        q.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        assert_eq!(compare(&q), Outcome::BothAccept);
        // The name limit, the same on both sides: 255 octets, not 256.
        for (last, outcome) in [(61, Outcome::BothAccept), (62, Outcome::BothRefuse)] {
            let mut m = header(0, 0x0100, [1, 0, 0, 0]);
            for len in [63, 63, 63, last] {
                m.push(len);
                m.extend(std::iter::repeat_n(b'n', usize::from(len)));
            }
            m.extend_from_slice(&[0, 0, 1, 0, 1]);
            assert_eq!(compare(&m), outcome, "last label {last}");
        }
        // Trailing bytes.
        let mut t = q.clone();
        t.push(0);
        assert_eq!(compare(&t), Outcome::Deliberate(Difference::TrailingBytes));
        // A question name pointing at the header's first byte, ID 0: hickory
        // reads the root there.
        let mut h = header(0, 0x0100, [1, 0, 0, 0]);
        h.extend_from_slice(&[0xC0, 0, 0, 1, 0, 1]);
        assert_eq!(
            compare(&h),
            Outcome::Deliberate(Difference::PointerIntoHeader)
        );
        // An answer owner behind one pointer more than the bound.
        let mut chain = header(0, 0x8180, [1, 1, 0, 0]);
        chain.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        // The RDATA of a private-type answer holds the chain: pointer i
        // points to pointer i-1, the first to the question name.
        let owner_is_chain_end = {
            let mut rdata = Vec::new();
            let base = chain.len() + 2 + 10;
            let mut prev = 12u16;
            for i in 0..=crate::wire::MAX_POINTER_HOPS {
                rdata.extend_from_slice(&(0xC000 | prev).to_be_bytes());
                prev = (base + 2 * i) as u16;
            }
            rr(&mut chain, &[0xC0, 12], 0xFF00, 0, &rdata);
            prev
        };
        chain[7] = 2;
        rr(
            &mut chain,
            &(0xC000 | owner_is_chain_end).to_be_bytes(),
            1,
            0,
            &[1, 2, 3, 4],
        );
        assert_eq!(
            compare(&chain),
            Outcome::Deliberate(Difference::TooManyPointers)
        );
        // RDATA hickory decodes: an A record of three octets, and empty
        // RDATA in a QUERY response.
        for rdata in [&[1u8, 2, 3][..], &[]] {
            let mut r = header(0, 0x8180, [1, 1, 0, 0]);
            r.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
            rr(&mut r, &[0xC0, 12], 1, 0, rdata);
            assert_eq!(compare(&r), Outcome::Deliberate(Difference::Rdata));
        }
    }
}
