//! RFC 3339 instants as unix seconds: the configuration's dates
//! (`enforce_after`, exemption `expires`, relationship end dates) and the
//! decision log's timestamps.

use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// `2026-04-01T00:00:00Z`, `2026-04-01T02:00:00.5+02:00`, or a bare date
/// `2026-04-01` (its first second, UTC). A date-time without an offset is
/// refused: it would mean a different instant on every machine.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// Like `parse`, also keeping the milliseconds (decision log timestamps).
pub fn parse_millis(s: &str) -> Option<i128> {
    match OffsetDateTime::parse(s.trim(), &Rfc3339) {
        Ok(t) => Some(t.unix_timestamp_nanos() / 1_000_000),
        Err(_) => parse(s).map(|secs| i128::from(secs) * 1000),
    }
}

/// `2026-04-01T00:00:00Z`.
pub fn format(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| unix.to_string()),
        Err(_) => unix.to_string(),
    }
}

/// `2026-04-01T00:00:00.123Z`: millisecond precision, always UTC.
pub fn format_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Room for `format_millis_into`: 24 bytes up to year 9999.
#[derive(Default)]
pub struct MillisBuf([u8; 32]);

/// `format_millis` without allocating: written into `buf`.
pub fn format_millis_into(t: SystemTime, buf: &mut MillisBuf) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf.0[..]);
    let len = match write!(cursor, "{}", humantime::format_rfc3339_millis(t)) {
        Ok(()) => cursor.position() as usize,
        Err(_) => 0,
    };
    std::str::from_utf8(&buf.0[..len]).unwrap_or_default()
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_into_a_buffer_match_the_allocating_form() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_775_001_600_123);
        let mut buf = MillisBuf::default();
        assert_eq!(format_millis_into(t, &mut buf), "2026-04-01T00:00:00.123Z");
        assert_eq!(format_millis_into(t, &mut buf), format_millis(t));
    }

    #[test]
    fn instants() {
        assert_eq!(parse("2026-04-01T00:00:00Z"), Some(1_775_001_600));
        assert_eq!(parse("2026-04-01T02:00:00+02:00"), Some(1_775_001_600));
        assert_eq!(parse("2026-04-01T00:00:00.9941884Z"), Some(1_775_001_600));
        assert_eq!(parse("2026-04-01"), Some(1_775_001_600));
        assert_eq!(parse_millis("2026-04-01T00:00:00.250Z"), Some(1_775_001_600_250));
        for bad in ["2026-04-01T00:00:00", "2026-13-01", "April 1st", "", "2026-4-1", "1775001600"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(format(1_775_001_600), "2026-04-01T00:00:00Z");
        assert_eq!(parse(&format(1_234_567_890)), Some(1_234_567_890));
        let now = SystemTime::now();
        assert!(parse_millis(&format_millis(now)).is_some());
    }
}
