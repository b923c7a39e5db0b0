//! Differential fuzzing of the crate's DNS parser (`dotcore::internals::wire`) against
//! hickory-proto's `Message::from_vec`, the decoder of the same version the
//! engine links.
//!
//! Where both accept an input, they must agree on the header fields (ID,
//! QR, opcode, AA, TC, RD, RA, AD, CD, RCODE with its EDNS high bits), the
//! four counts, every question (name compared case-insensitively, type,
//! class), every record's owner, type, class and TTL, and the EDNS version,
//! DO bit and payload size. Where only one accepts, the reason must be one
//! of these deliberate differences (`dotcore::internals::wire::differential::Difference`),
//! anything else is a crash:
//!
//! * **Trailing bytes** — we refuse bytes after the last record the header
//!   announced; hickory ignores them.
//! * **Pointer into the header** — we refuse a compression pointer to
//!   offsets 0–11, where no name is (RFC 1035 §4.1.4 pointers go to a prior
//!   occurrence of a name); hickory reads header bytes as labels.
//! * **Too many pointers** — we refuse a name that follows more than
//!   `MAX_POINTER_HOPS` (127) pointers; hickory has no such bound.
//! * **RDATA** — hickory decodes RDATA by type (names inside it, address
//!   lengths, EDNS options, SIG/TSIG placement) and refuses empty RDATA
//!   outside UPDATE; we keep RDATA opaque (RFC 3597 §3). Accepted only when
//!   hickory takes the same message with types it does not know and opcode
//!   UPDATE.
//!
//! Both refuse, and so agree on: names over 255 octets (RFC 1035 §3.1),
//! reserved label types, forward and self pointers and pointers into the
//! name that used them, OPT outside the additional section or not owned by
//! the root, and more than one OPT (RFC 6891 §6.1.1, §6.1.2).
//!
//! The same comparison runs on stable over a fixed mutated corpus in
//! `dotcore`'s unit tests (`wire::differential::tests`).

#![no_main]

use dotcore::internals::wire::differential::compare;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    compare(data);
});
