//! The end of a certificate's validity (`notAfter`), read from its DER
//! encoding (RFC 5280 §4.1): just enough of a DER reader to walk
//! `Certificate → tbsCertificate → validity`, so that operators can be
//! warned before the listener's certificate expires.

use time::{Date, Month, PrimitiveDateTime, Time};

/// Unix seconds of `notAfter`; `None` when the encoding is not understood.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (cert, _) = element(der, SEQUENCE)?;
    let (tbs, _) = element(cert, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT is optional (absent means v1).
    if rest.first() == Some(&0xA0) {
        rest = element(rest, 0xA0)?.1;
    }
    rest = skip(rest)?; // serialNumber
    rest = skip(rest)?; // signature AlgorithmIdentifier
    rest = skip(rest)?; // issuer
    let (validity, _) = element(rest, SEQUENCE)?;
    let after_not_before = skip(validity)?;
    let (tag, value, _) = any(after_not_before)?;
    match tag {
        UTC_TIME => parse_time(value, false),
        GENERALIZED_TIME => parse_time(value, true),
        _ => None,
    }
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The value of the element at the start of `input` if it has `tag`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, value, rest) = any(input)?;
    (t == tag).then_some((value, rest))
}

fn skip(input: &[u8]) -> Option<&[u8]> {
    any(input).map(|(_, _, rest)| rest)
}

/// Tag, value and rest of the element at the start of `input` (single-byte
/// tags, definite lengths: all that DER allows here).
fn any(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (bytes, rest) = input.split_at(n);
        input = rest;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (input.len() >= len).then(|| (tag, &input[..len], &input[len..]))
}

/// `YYMMDDHHMMSSZ` (UTCTime: 50-99 is 19xx) or `YYYYMMDDHHMMSSZ`.
fn parse_time(value: &[u8], four_digit_year: bool) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = if four_digit_year {
        (text.get(..4)?.parse::<i32>().ok()?, text.get(4..)?)
    } else {
        let yy = text.get(..2)?.parse::<i32>().ok()?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
    };
    if rest.len() != 10 {
        return None;
    }
    let field = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let date = Date::from_calendar_date(year, Month::try_from(field(0)?).ok()?, field(2)?).ok()?;
    let time = Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2027, 3, 31);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()), Some(1_806_451_200)); // 2027-03-31T00:00:00Z
    }

    #[test]
    fn generalized_time_after_2049() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2055, 6, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after(cert.der()), Some(2_695_420_800)); // 2055-06-01T00:00:00Z
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xFF]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x01]), None);
        assert_eq!(parse_time(b"991231235959Z", false), Some(946_684_799));
        assert_eq!(parse_time(b"9912312359Z", false), None);
        assert_eq!(parse_time(b"991331235959Z", false), None);
    }
}
