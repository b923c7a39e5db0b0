//! Domain names on the wire (RFC 1035 §3.1, §4.1.4): the one walker every
//! name in a message goes through, so that the proxy, the cache, the
//! resolver and the TUN path accept and refuse exactly the same names.

use super::{u16_at, WireError, HEADER_LEN};

/// The longest a name may be on the wire, length octets and the root label
/// included (RFC 1035 §2.3.4, §3.1: "255 octets or less").
pub const MAX_NAME_LEN: usize = 255;

/// The most compression pointers one name may follow. Strictly decreasing
/// targets already make every walk end; this only bounds how long. A name
/// has at most 127 labels (each takes two octets of [`MAX_NAME_LEN`]), and a
/// compressor that points at names it wrote earlier needs at most one
/// pointer per label, so no honest name comes near it.
pub const MAX_POINTER_HOPS: usize = 127;

/// Walks the name starting at `start` and returns the offset just after it
/// where it sits (after its first pointer, if it has one). With `out`, the
/// name is appended there uncompressed and lower-cased.
///
/// The rules, checked before anything is read through a pointer:
///
/// * label lengths use only the `00` form; `01` and `10` are reserved
///   (RFC 1035 §4.1.4, RFC 6891 §5 retired the extended label types);
/// * the whole name, root included, is at most [`MAX_NAME_LEN`] octets;
/// * a pointer goes to a *prior* occurrence (RFC 1035 §4.1.4): strictly
///   before the start of the labels it was reached from, so self and
///   forward pointers are refused and every walk terminates;
/// * what a pointer leads to must lie wholly before the labels that
///   pointed there (a prior name ends before a later one begins), so no
///   byte is read twice and a question section copied alone stays whole;
/// * a pointer never goes into the 12-byte header, which holds no names;
/// * at most [`MAX_POINTER_HOPS`] pointers.
pub(super) fn walk_name(
    msg: &[u8],
    start: usize,
    out: Option<&mut Vec<u8>>,
) -> Result<usize, WireError> {
    walk_name_marking(msg, start, out, |_| ())
}

/// [`walk_name`], also telling `mark` the offset of every octet it reads as
/// a label length or a pointer: the bytes whose change would change the
/// name's structure, which the differential comparison must leave alone.
pub(super) fn walk_name_marking(
    msg: &[u8],
    start: usize,
    mut out: Option<&mut Vec<u8>>,
    mut mark: impl FnMut(usize),
) -> Result<usize, WireError> {
    let mut pos = start;
    // Where the labels being read began, and where reading must stop
    // (the start of the labels that pointed here).
    let mut segment = start;
    let mut limit = usize::MAX;
    let mut in_place_end = None;
    // The root label's octet.
    let mut wire_len = 1;
    let mut hops = 0;
    loop {
        if pos >= limit {
            return Err(WireError::PointerLoop);
        }
        let len = usize::from(*msg.get(pos).ok_or(WireError::Truncated)?);
        mark(pos);
        match len & 0xC0 {
            0x00 if len == 0 => {
                if let Some(out) = out.as_deref_mut() {
                    out.push(0);
                }
                return Ok(in_place_end.unwrap_or(pos + 1));
            }
            0x00 => {
                wire_len += len + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(WireError::NameTooLong);
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(WireError::Truncated)?;
                if let Some(out) = out.as_deref_mut() {
                    out.push(len as u8);
                    out.extend(label.iter().map(u8::to_ascii_lowercase));
                }
                pos += 1 + len;
            }
            0xC0 => {
                let target = usize::from(u16_at(msg, pos)? & 0x3FFF);
                mark(pos + 1);
                if target >= segment {
                    return Err(WireError::PointerLoop);
                }
                if target < HEADER_LEN {
                    return Err(WireError::PointerIntoHeader);
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(WireError::TooManyPointers);
                }
                in_place_end.get_or_insert(pos + 2);
                limit = segment;
                segment = target;
                pos = target;
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// Whether the name at `at` is the root. A pointer to a lone zero octet is
/// pointless but legal, and RFC 6891 §6.1.2 asks about the name, not its
/// encoding, so pointers are followed rather than the first octet read.
pub(super) fn is_root(msg: &[u8], at: usize) -> bool {
    let mut name = Vec::new();
    walk_name(msg, at, Some(&mut name)).is_ok() && name == [0]
}
