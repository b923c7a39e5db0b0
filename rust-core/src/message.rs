//! Building queries and reading answers for callers that have a name, not
//! a wire message (the CLI, app developers using the Kotlin API), on top of
//! hickory-proto's message types.

use std::str::FromStr;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// Why a query could not be built or an answer read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// The name is not a valid domain name.
    BadName(String),
    /// The type is neither a known mnemonic nor a number.
    BadType(String),
    /// The answer could not be decoded.
    BadAnswer(String),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::BadName(e) => write!(f, "name: {e}"),
            MessageError::BadType(t) => write!(f, "type: {t:?} is not a record type"),
            MessageError::BadAnswer(e) => write!(f, "answer: {e}"),
        }
    }
}

impl std::error::Error for MessageError {}

/// One answer record in presentation form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRecord {
    /// Owner name.
    pub name: String,
    /// Type mnemonic.
    pub rtype: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// RDATA in presentation form (as `dig +short` prints it).
    pub data: String,
}

/// A decoded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Response code mnemonic (NOERROR, NXDOMAIN, SERVFAIL, ...).
    pub rcode: String,
    /// Answer-section records.
    pub records: Vec<AnswerRecord>,
}

/// The RFC 1035/6895 mnemonic of a response code, as dig prints it.
pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// Parses a record type mnemonic (case-insensitive) or number.
pub fn parse_type(rtype: &str) -> Result<u16, MessageError> {
    if let Ok(n) = rtype.parse::<u16>() {
        return Ok(n);
    }
    RecordType::from_str(&rtype.to_ascii_uppercase())
        .map(u16::from)
        .map_err(|_| MessageError::BadType(rtype.into()))
}

/// A recursive query for `name` and `rtype` in wire format, ID 0.
pub fn build_query(name: &str, rtype: &str) -> Result<Vec<u8>, MessageError> {
    let qname = Name::from_str(name).map_err(|e| MessageError::BadName(e.to_string()))?;
    let qtype = RecordType::from(parse_type(rtype)?);
    let mut message = Message::query();
    message.metadata.id = 0;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(qname, qtype));
    message
        .to_vec()
        .map_err(|e| MessageError::BadName(e.to_string()))
}

/// Decodes an answer into presentation form.
pub fn decode_answer(bytes: &[u8]) -> Result<Answer, MessageError> {
    let m = Message::from_vec(bytes).map_err(|e| MessageError::BadAnswer(e.to_string()))?;
    Ok(Answer {
        rcode: rcode_name(u16::from(m.metadata.response_code)),
        records: m
            .answers
            .iter()
            .map(|r| AnswerRecord {
                name: r.name.to_string(),
                rtype: r.record_type().to_string(),
                ttl: r.ttl,
                data: r.data.to_string(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_rejects() {
        let q = build_query("a.test", "aaaa").unwrap();
        let parsed = crate::wire::Query::parse(q).unwrap();
        assert_eq!(parsed.key.qtype, 28);
        assert_eq!(parsed.key.display_name(), "a.test.");
        assert!(matches!(
            build_query("a.test", "NOPE"),
            Err(MessageError::BadType(_))
        ));
        assert!(matches!(
            build_query(&"x".repeat(300), "A"),
            Err(MessageError::BadName(_))
        ));
        assert_eq!(parse_type("65").unwrap(), 65);
        let servfail = crate::wire::error_response(&build_query("a.test", "A").unwrap(), 2);
        assert_eq!(decode_answer(&servfail).unwrap().rcode, "SERVFAIL");
    }
}
