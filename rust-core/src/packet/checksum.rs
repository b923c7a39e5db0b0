//! The Internet checksum (RFC 1071) shared by IPv4, UDP, TCP and ICMP.

use std::net::IpAddr;

/// Running one's-complement sum.
///
/// Callers feed it only even-length chunks except for the very last one, which
/// is all the protocols here ever need (pseudo-header fields and headers are
/// 16-bit aligned; only the payload may end on an odd byte).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Checksum {
    sum: u64,
}

impl Checksum {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Adds `data` as big-endian 16-bit words, padding an odd tail with zero.
    pub(super) fn add(&mut self, data: &[u8]) -> &mut Self {
        let mut words = data.chunks_exact(2);
        for w in &mut words {
            if let &[hi, lo] = w {
                self.sum += u64::from(u16::from_be_bytes([hi, lo]));
            }
        }
        if let [last] = words.remainder() {
            self.sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
        self
    }

    pub(super) fn add_u16(&mut self, v: u16) -> &mut Self {
        self.sum += u64::from(v);
        self
    }

    pub(super) fn add_u32(&mut self, v: u32) -> &mut Self {
        self.sum += u64::from(v >> 16) + u64::from(v & 0xffff);
        self
    }

    /// Adds the TCP/UDP/ICMPv6 pseudo-header for either IP version.
    ///
    /// `src` and `dst` must be of the same family; the callers guarantee it.
    pub(super) fn add_pseudo_header(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        upper_len: u32,
    ) -> &mut Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.add(&s.octets()).add(&d.octets());
            }
            (s, d) => {
                self.add(&ip_octets16(s)).add(&ip_octets16(d));
            }
        }
        self.add_u16(u16::from(protocol)).add_u32(upper_len)
    }

    /// The folded, complemented sum: the value to store in a checksum field.
    pub(super) fn finish(&self) -> u16 {
        let mut s = self.sum;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        // Truncation is exact: the loop above leaves at most 16 bits.
        !(s as u16)
    }
}

fn ip_octets16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// True when `data`, which already contains its checksum field, sums to zero.
pub(super) fn verifies(c: &mut Checksum, data: &[u8]) -> bool {
    c.add(data).finish() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::new().add(&data).finish(), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            Checksum::new().add(&[0xab]).finish(),
            Checksum::new().add(&[0xab, 0x00]).finish()
        );
    }

    #[test]
    fn folds_many_carries() {
        let data = vec![0xffu8; 65536];
        // A sum of all-ones words is all ones, so the complement is zero.
        assert_eq!(Checksum::new().add(&data).finish(), 0);
    }
}
