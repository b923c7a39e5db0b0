//! Bounds-checked reading and patching of DNS wire messages (RFC 1035 §4).
//!
//! The hot path (ID rewriting, padding, TTL ageing in the cache, matching a
//! response to its query) only needs to know *where* things are in a message,
//! so it works on offsets instead of decoding whole messages. Every byte is
//! treated as hostile: all reads are checked, name compression is followed a
//! bounded number of times, and errors say what was wrong.
//!
//! This is the only DNS message parser of the crate: the resolver, the
//! cache, the clear-text fallback, the CLI proxy and the TUN packet path
//! all read messages through it, so they cannot disagree on what is a
//! message. The fuzz target `wire_vs_hickory` (and the test that runs the
//! same comparison in CI) checks it against hickory-proto's decoder; its
//! documentation lists where the two differ on purpose.

use std::fmt;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod differential;
mod name;
mod truncate;

pub use name::{MAX_NAME_LEN, MAX_POINTER_HOPS};
pub use truncate::{advertised_udp_payload, truncate_dns_response};

/// Size of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// RR type of the EDNS(0) OPT pseudo-record (RFC 6891).
pub const TYPE_OPT: u16 = 41;
/// RR type SOA, needed for negative caching (RFC 2308).
pub const TYPE_SOA: u16 = 6;
/// EDNS option code of edns-tcp-keepalive (RFC 7828).
pub const OPT_TCP_KEEPALIVE: u16 = 11;
/// EDNS option code of padding (RFC 7830).
pub const OPT_PADDING: u16 = 12;
/// Response codes used by the engine.
pub const RCODE_NOERROR: u8 = 0;
/// Format error.
pub const RCODE_FORMERR: u8 = 1;
/// Server failure: what a client gets when no upstream could answer.
pub const RCODE_SERVFAIL: u8 = 2;
/// Name error (NXDOMAIN).
pub const RCODE_NXDOMAIN: u8 = 3;
/// Not implemented (for opcodes other than QUERY).
pub const RCODE_NOTIMP: u8 = 4;
/// Extended response code BADVERS (RFC 6891 §6.1.3, value 16): the query's
/// EDNS version is not implemented. It needs an OPT record to carry it.
pub const RCODE_BADVERS: u16 = 16;
/// The EDNS version this engine implements (RFC 6891).
pub const EDNS_VERSION: u8 = 0;
/// The UDP payload size advertised in our OPT records: the value the DNS
/// Flag Day 2020 settled on, safe against fragmentation on common paths.
pub const EDNS_UDP_SIZE: u16 = 1232;

/// What is wrong with a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the 12-byte header.
    ShortHeader,
    /// A section ran past the end of the message.
    Truncated,
    /// A label length uses a reserved form (`01` or `10` in its top bits).
    BadName,
    /// A name is longer than 255 octets (RFC 1035 §2.3.4, §3.1).
    NameTooLong,
    /// A compression pointer points forward, at itself, or at bytes that do
    /// not lie wholly before the name that used it: RFC 1035 §4.1.4 allows
    /// only pointers to a prior occurrence, which is what keeps the walk
    /// loop-free.
    PointerLoop,
    /// A compression pointer points into the header, where no name is.
    PointerIntoHeader,
    /// A name follows more than [`MAX_POINTER_HOPS`] compression pointers.
    TooManyPointers,
    /// An OPT record outside the additional section, or owned by a name
    /// other than the root (RFC 6891 §6.1.1, §6.1.2).
    BadOpt,
    /// More than one OPT record (RFC 6891 §6.1.1).
    DuplicateOpt,
    /// Bytes remain after the last record the header announced.
    TrailingBytes,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::ShortHeader => "message shorter than the DNS header",
            WireError::Truncated => "message ends inside a section",
            WireError::BadName => "malformed domain name",
            WireError::NameTooLong => "domain name longer than 255 octets",
            WireError::PointerLoop => "name compression pointer does not point to a prior name",
            WireError::PointerIntoHeader => "name compression pointer into the header",
            WireError::TooManyPointers => "name follows too many compression pointers",
            WireError::BadOpt => "OPT record misplaced or not owned by the root",
            WireError::DuplicateOpt => "more than one OPT record",
            WireError::TrailingBytes => "bytes after the last record",
        })
    }
}

impl std::error::Error for WireError {}

/// Where one resource record sits in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrLocation {
    /// Offset of the record's first byte (its owner name).
    pub start: usize,
    /// Offset of the TYPE field.
    pub type_at: usize,
    /// The record type.
    pub rtype: u16,
    /// Offset of the 4-byte TTL field.
    pub ttl_at: usize,
    /// The TTL as sent.
    pub ttl: u32,
    /// Offset of RDATA.
    pub rdata_at: usize,
    /// Length of RDATA.
    pub rdata_len: usize,
    /// Section: 1 answer, 2 authority, 3 additional.
    pub section: u8,
}

impl RrLocation {
    /// Offset one past the record's last byte.
    pub fn end(&self) -> usize {
        self.rdata_at + self.rdata_len
    }
}

/// A DNS response as a server sent it (its ID still the one it was sent
/// with), and its layout, parsed once on arrival.
#[derive(Debug)]
pub struct Response {
    /// The message.
    pub bytes: Vec<u8>,
    /// Where its sections and records are.
    pub layout: Layout,
}

/// The layout of a whole message, found by [`Layout::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Byte range of the question section (all questions).
    pub question: std::ops::Range<usize>,
    /// Number of questions.
    pub qdcount: u16,
    /// Every record after the question, in order.
    pub records: Vec<RrLocation>,
    /// Index into `records` of the OPT record, if any.
    pub opt: Option<usize>,
}

/// Reads a big-endian u16 at `at`.
pub fn u16_at(msg: &[u8], at: usize) -> Result<u16, WireError> {
    let b = msg.get(at..at + 2).ok_or(WireError::Truncated)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, WireError> {
    let b = msg.get(at..at + 4).ok_or(WireError::Truncated)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Returns the offset just after the name starting at `at` where it sits,
/// having checked the whole name, through its compression pointers, by the
/// rules of [`read_name_lower`].
pub fn skip_name(msg: &[u8], at: usize) -> Result<usize, WireError> {
    name::walk_name(msg, at, None)
}

/// Appends the lower-cased, uncompressed wire form of the name at `at` to
/// `out`. Names longer than [`MAX_NAME_LEN`], reserved label types and
/// compression pointers that do not point to a prior name (RFC 1035
/// §4.1.4), point into the header, or chain more than [`MAX_POINTER_HOPS`]
/// times are refused; nothing is appended past what was checked.
pub fn read_name_lower(msg: &[u8], at: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let mark = out.len();
    let result = name::walk_name(msg, at, Some(out)).map(|_| ());
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// Returns the offset just after the question section, each of its
/// `QDCOUNT` names checked. Enough for a caller that keeps only the header
/// and the question, whatever follows.
pub fn question_end(msg: &[u8]) -> Result<usize, WireError> {
    if msg.len() < HEADER_LEN {
        return Err(WireError::ShortHeader);
    }
    let mut at = HEADER_LEN;
    // Each question takes at least five bytes, so a lying count runs out of
    // message long before it runs out of iterations.
    for _ in 0..u16_at(msg, 4)? {
        at = skip_name(msg, at)? + 4;
        if at > msg.len() {
            return Err(WireError::Truncated);
        }
    }
    Ok(at)
}

impl Layout {
    /// Finds the sections and records of `msg`. Trailing bytes are an error:
    /// a frame that says more than it holds is not a message we act on.
    pub fn parse(msg: &[u8]) -> Result<Layout, WireError> {
        if msg.len() < HEADER_LEN {
            return Err(WireError::ShortHeader);
        }
        let qdcount = u16_at(msg, 4)?;
        let counts = [u16_at(msg, 6)?, u16_at(msg, 8)?, u16_at(msg, 10)?];
        let mut at = question_end(msg)?;
        let question = HEADER_LEN..at;
        // Each record takes at least 11 bytes, which bounds the allocation.
        let announced: usize = counts.iter().map(|&c| c as usize).sum();
        let mut records = Vec::with_capacity(announced.min((msg.len() - at) / 11));
        let mut opt = None;
        for (section, &count) in counts.iter().enumerate() {
            for _ in 0..count {
                let start = at;
                let type_at = skip_name(msg, at)?;
                let rtype = u16_at(msg, type_at)?;
                let ttl_at = type_at + 4;
                let ttl = u32_at(msg, ttl_at)?;
                let rdata_len = u16_at(msg, ttl_at + 4)? as usize;
                let rdata_at = ttl_at + 6;
                if rdata_at + rdata_len > msg.len() {
                    return Err(WireError::Truncated);
                }
                if rtype == TYPE_OPT {
                    if section != 2 || !name::is_root(msg, start) {
                        return Err(WireError::BadOpt);
                    }
                    if opt.is_some() {
                        return Err(WireError::DuplicateOpt);
                    }
                    opt = Some(records.len());
                }
                records.push(RrLocation {
                    start,
                    type_at,
                    rtype,
                    ttl_at,
                    ttl,
                    rdata_at,
                    rdata_len,
                    section: section as u8 + 1,
                });
                at = rdata_at + rdata_len;
            }
        }
        if at != msg.len() {
            return Err(WireError::TrailingBytes);
        }
        Ok(Layout {
            question,
            qdcount,
            records,
            opt,
        })
    }

    /// The OPT record, if present.
    pub fn opt_record(&self) -> Option<&RrLocation> {
        self.opt.map(|i| &self.records[i])
    }
}

/// The message ID.
pub fn id(msg: &[u8]) -> u16 {
    u16_at(msg, 0).unwrap_or(0)
}

/// Overwrites the message ID.
pub fn set_id(msg: &mut [u8], id: u16) {
    if msg.len() >= 2 {
        msg[..2].copy_from_slice(&id.to_be_bytes());
    }
}

/// The low four bits of the response code (the header part).
pub fn rcode(msg: &[u8]) -> u8 {
    msg.get(3).map_or(RCODE_SERVFAIL, |b| b & 0x0F)
}

/// Whether the QR bit marks this as a response.
pub fn is_response(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|b| b & 0x80 != 0)
}

/// Clears the AD (authentic data) bit. The engine passes AD on only from a
/// server that authenticated over TLS: from anyone else it is an unproven
/// claim that an on-path attacker could make (RFC 4035 §4.9.3, RFC 6840
/// §5.7: AD is only as good as the channel it came over).
pub fn clear_authentic_data(msg: &mut [u8]) {
    if let Some(flags) = msg.get_mut(3) {
        *flags &= !0x20;
    }
}

/// Whether the TC bit is set.
pub fn is_truncated(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|b| b & 0x02 != 0)
}

/// The four-bit opcode.
pub fn opcode(msg: &[u8]) -> u8 {
    msg.get(2).map_or(0, |b| (b >> 3) & 0x0F)
}

/// Whether the CD (checking disabled) bit is set.
pub fn checking_disabled(msg: &[u8]) -> bool {
    msg.get(3).is_some_and(|b| b & 0x10 != 0)
}

/// The identity of a question, used to match responses to queries and as the
/// cache key: lower-cased name, type, class, and the DO and CD bits (an
/// answer fetched without DNSSEC records must not answer a query that wants them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuestionKey {
    /// Lower-cased uncompressed wire name.
    pub name: Vec<u8>,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// EDNS DO bit of the query.
    pub dnssec_ok: bool,
    /// CD bit of the query.
    pub checking_disabled: bool,
}

impl QuestionKey {
    /// The key of the first question of `msg`; `None` when there is no question.
    pub fn of(msg: &[u8], layout: &Layout) -> Result<Option<QuestionKey>, WireError> {
        if layout.qdcount == 0 {
            return Ok(None);
        }
        let mut name = Vec::with_capacity(32);
        read_name_lower(msg, HEADER_LEN, &mut name)?;
        let after = skip_name(msg, HEADER_LEN)?;
        let dnssec_ok = layout
            .opt_record()
            .is_some_and(|o| o.ttl & 0x0000_8000 != 0);
        Ok(Some(QuestionKey {
            name,
            qtype: u16_at(msg, after)?,
            qclass: u16_at(msg, after + 2)?,
            dnssec_ok,
            checking_disabled: checking_disabled(msg),
        }))
    }

    /// Whether a response's question is the same as this query's (DO and CD
    /// are properties of the query, so only name, type and class count).
    pub fn same_question(&self, other: &QuestionKey) -> bool {
        self.name == other.name && self.qtype == other.qtype && self.qclass == other.qclass
    }

    /// The name in presentation form, for logs and the query log.
    pub fn display_name(&self) -> String {
        let mut out = String::new();
        let mut at = 0;
        while let Some(&len) = self.name.get(at) {
            if len == 0 {
                break;
            }
            let label = self.name.get(at + 1..at + 1 + len as usize).unwrap_or(&[]);
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("\\{b:03}"));
                }
            }
            out.push('.');
            at += 1 + len as usize;
        }
        if out.is_empty() {
            out.push('.');
        }
        out
    }
}

/// A client query checked to be something the engine forwards: a standard
/// query (opcode 0, QR clear) with exactly one question.
#[derive(Debug, Clone)]
pub struct Query {
    /// The message as the client sent it.
    pub bytes: Vec<u8>,
    /// Its layout.
    pub layout: Layout,
    /// Its question identity.
    pub key: QuestionKey,
}

/// Why a client query is refused before it goes anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// Not parseable; `id` is what we could read, to address a FORMERR.
    Malformed(WireError),
    /// QR set: a response was sent where a query belongs.
    NotAQuery,
    /// Opcode other than QUERY.
    UnsupportedOpcode(u8),
    /// Zero or several questions.
    QuestionCount(u16),
    /// An EDNS version above [`EDNS_VERSION`] (answered with BADVERS).
    UnsupportedEdnsVersion(u8),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Malformed(e) => write!(f, "malformed query: {e}"),
            QueryError::NotAQuery => f.write_str("message is a response, not a query"),
            QueryError::UnsupportedOpcode(op) => write!(f, "unsupported opcode {op}"),
            QueryError::QuestionCount(n) => write!(f, "query has {n} questions, expected 1"),
            QueryError::UnsupportedEdnsVersion(v) => {
                write!(f, "EDNS version {v} (only {EDNS_VERSION} is implemented)")
            }
        }
    }
}

impl std::error::Error for QueryError {}

impl Query {
    /// Checks a client's message.
    pub fn parse(bytes: Vec<u8>) -> Result<Query, QueryError> {
        let layout = Layout::parse(&bytes).map_err(QueryError::Malformed)?;
        if is_response(&bytes) {
            return Err(QueryError::NotAQuery);
        }
        if opcode(&bytes) != 0 {
            return Err(QueryError::UnsupportedOpcode(opcode(&bytes)));
        }
        if layout.qdcount != 1 {
            return Err(QueryError::QuestionCount(layout.qdcount));
        }
        if let Some(opt) = layout.opt_record() {
            // The OPT TTL field: extended RCODE, VERSION, DO and Z flags.
            let version = opt.ttl.to_be_bytes()[1];
            if version > EDNS_VERSION {
                return Err(QueryError::UnsupportedEdnsVersion(version));
            }
        }
        let key = QuestionKey::of(&bytes, &layout)
            .map_err(QueryError::Malformed)?
            .ok_or(QueryError::QuestionCount(0))?;
        Ok(Query { bytes, layout, key })
    }

    /// The client's ID.
    pub fn id(&self) -> u16 {
        id(&self.bytes)
    }

    /// Whether the client sent EDNS.
    pub fn has_edns(&self) -> bool {
        self.layout.opt.is_some()
    }

    /// Builds the message sent upstream over TLS: header and question only,
    /// one OPT record carrying the client's DO bit, an empty edns-tcp-keepalive
    /// option (RFC 7828 §3.1: clients send it empty), and padding to a
    /// multiple of `block` bytes (RFC 8467 §4.1 recommends 128 for queries).
    /// Client options (Client Subnet among them) are never forwarded.
    pub fn to_upstream(&self, id: u16, block: usize, request_keepalive: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.layout.question.end + 11 + 8 + block);
        out.extend_from_slice(&self.bytes[..HEADER_LEN]);
        set_id(&mut out, id);
        // Keep RD and CD; clear AD, Z.
        out[3] &= 0x10;
        out[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
        out.extend_from_slice(&self.bytes[self.layout.question.clone()]);
        let do_bit: u16 = if self.key.dnssec_ok { 0x8000 } else { 0 };
        // OPT: root name, type 41, class = our UDP size, TTL = ext-rcode/version/flags.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&do_bit.to_be_bytes());
        let rdlen_at = out.len();
        out.extend_from_slice(&[0, 0]);
        if request_keepalive {
            out.extend_from_slice(&OPT_TCP_KEEPALIVE.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        if block > 0 {
            // The padding option's own 4-byte header counts toward the total.
            let unpadded = out.len() + 4;
            let pad = (block - unpadded % block) % block;
            out.extend_from_slice(&OPT_PADDING.to_be_bytes());
            out.extend_from_slice(&(pad as u16).to_be_bytes());
            out.resize(out.len() + pad, 0);
        }
        let rdlen = (out.len() - rdlen_at - 2) as u16;
        out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        out
    }
}

/// Reads the server's edns-tcp-keepalive timeout from a response, in units of
/// 100 ms (RFC 7828 §3.2), if it sent one.
pub fn keepalive_timeout(msg: &[u8], layout: &Layout) -> Option<u16> {
    let opt = layout.opt_record()?;
    let mut at = opt.rdata_at;
    let end = opt.end();
    while at + 4 <= end {
        let code = u16_at(msg, at).ok()?;
        let len = u16_at(msg, at + 2).ok()? as usize;
        if at + 4 + len > end {
            return None;
        }
        if code == OPT_TCP_KEEPALIVE && len == 2 {
            return u16_at(msg, at + 4).ok();
        }
        at += 4 + len;
    }
    None
}

/// Rewrites an upstream response for the client that asked: its ID, its
/// question and RD bit as that client sent them, and its OPT record made fit
/// for that client — removed when the client sent no EDNS (RFC 6891 §7),
/// otherwise stripped of options (keepalive and padding are about our TLS
/// hop, not the client's).
///
/// The question matters because an answer from the cache, or one shared by
/// coalesced queries, was first fetched for a name that may differ in case:
/// clients that randomise the case of their names (the "0x20" defence
/// against spoofing) drop answers whose question does not match theirs
/// byte for byte.
pub fn response_for_client(response: &[u8], layout: &Layout, query: &Query) -> Vec<u8> {
    let mut out = match layout.opt_record() {
        None => response.to_vec(),
        Some(opt) => {
            let mut out = Vec::with_capacity(response.len());
            if query.has_edns() {
                out.extend_from_slice(&response[..opt.rdata_at - 2]);
                out.extend_from_slice(&[0, 0]);
            } else {
                out.extend_from_slice(&response[..opt.start]);
                let arcount = u16_at(response, 10).unwrap_or(1).saturating_sub(1);
                out[10..12].copy_from_slice(&arcount.to_be_bytes());
            }
            out.extend_from_slice(&response[opt.end()..]);
            out
        }
    };
    set_id(&mut out, query.id());
    // The question precedes every record, so it sits at the same place in
    // `out`. A question of the same name in another case has the same
    // length (the first name of a message cannot be compressed).
    let theirs = query.layout.question.clone();
    if layout.question == theirs {
        if let (Some(dst), Some(src)) = (out.get_mut(theirs.clone()), query.bytes.get(theirs)) {
            if dst.eq_ignore_ascii_case(src) {
                dst.copy_from_slice(src);
            }
        }
    }
    if let (Some(flags), Some(&asked)) = (out.get_mut(2), query.bytes.get(2)) {
        *flags = (*flags & !0x01) | (asked & 0x01);
    }
    out
}

/// A minimal response with `rcode` for `query`: the header with QR and RA
/// set, RD copied, and the question echoed when it could be read.
pub fn error_response(query: &[u8], rcode: u8) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    if query.len() >= 4 {
        out[..2].copy_from_slice(&query[..2]);
        out[2] = 0x80 | (query[2] & 0x79); // QR, opcode, RD
        out[3] = 0x80 | (query[3] & 0x10) | (rcode & 0x0F); // RA, CD, rcode
    } else {
        out[2] = 0x80;
        out[3] = 0x80 | (rcode & 0x0F);
    }
    if let Ok(layout) = Layout::parse(query) {
        if layout.qdcount == 1 {
            out[4..6].copy_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&query[layout.question]);
        }
    }
    out
}

/// The answer to a query whose EDNS version we do not implement (RFC 6891
/// §6.1.3): RCODE BADVERS, split between the header's low four bits and
/// the OPT record's extended RCODE, with our version, UDP size, and the
/// query's DO bit (RFC 3225 §3).
pub fn badvers_response(query: &[u8]) -> Vec<u8> {
    let mut out = error_response(query, (RCODE_BADVERS & 0x0F) as u8);
    let do_bit = Layout::parse(query)
        .ok()
        .and_then(|l| l.opt_record().map(|o| o.ttl & 0x8000))
        .unwrap_or(0);
    let ttl = (u32::from(RCODE_BADVERS >> 4) << 24) | (u32::from(EDNS_VERSION) << 16) | do_bit;
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out[10..12].copy_from_slice(&1u16.to_be_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests;
