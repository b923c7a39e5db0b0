//! Finds the SubjectPublicKeyInfo inside an X.509 certificate (RFC 5280
//! §4.1), for SPKI pinning. Only the DER structure up to that field is
//! walked; the certificate itself is validated elsewhere (or not at all, for
//! pin-only servers), so this must be robust to any bytes.

/// One DER element: its tag, and the ranges of the whole element and its contents.
struct Element {
    tag: u8,
    whole_end: usize,
    content: std::ops::Range<usize>,
}

fn element(der: &[u8], at: usize) -> Option<Element> {
    let tag = *der.get(at)?;
    let first = *der.get(at + 1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7F;
        if n == 0 || n > 3 {
            return None; // indefinite or absurd lengths are not DER certificates
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *der.get(at + 2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let start = at + header;
    let end = start.checked_add(len)?;
    if end > der.len() {
        return None;
    }
    Some(Element {
        tag,
        whole_end: end,
        content: start..end,
    })
}

/// Returns the DER bytes of the certificate's SubjectPublicKeyInfo.
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    let outer = element(cert, 0)?;
    if outer.tag != SEQUENCE {
        return None;
    }
    let tbs = element(cert, outer.content.start)?;
    if tbs.tag != SEQUENCE {
        return None;
    }
    let mut at = tbs.content.start;
    // version [0] EXPLICIT is optional.
    let first = element(cert, at)?;
    if first.tag == 0xA0 {
        at = first.whole_end;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        at = element(cert, at)?.whole_end;
    }
    let spki = element(cert, at)?;
    if spki.tag != SEQUENCE || spki.whole_end > tbs.content.end {
        return None;
    }
    cert.get(at..spki.whole_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;

    #[test]
    fn finds_spki_of_generated_certificate() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["dot.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            subject_public_key_info(cert.der()).unwrap(),
            key.subject_public_key_info().as_slice()
        );
    }

    #[test]
    fn hostile_input_returns_none() {
        assert!(subject_public_key_info(&[]).is_none());
        assert!(subject_public_key_info(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_none());
        assert!(subject_public_key_info(&[0x30, 0x03, 0x30, 0x01]).is_none());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for n in 0..der.len() {
            let _ = subject_public_key_info(&der[..n]);
        }
    }
}
