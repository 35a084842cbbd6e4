//! An event as hookd stores and sends it: its id, its timestamps, and the
//! exact body every subscriber receives.
//!
//! The body is built once, at ingest, and stored: every attempt sends the
//! same bytes. `data` goes in exactly as the app sent it (no re-encoding,
//! so `1.0` stays `1.0`).

use std::fmt::Write as _;

use rand::RngCore;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// What generated event ids start with.
pub const GENERATED_ID_PREFIX: &str = "evt_";
/// Longest event id an app may send.
pub const MAX_ID_LEN: usize = 128;

/// Checks an app-given id: 1 to 128 characters of `[A-Za-z0-9_-]`.
pub fn check_event_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("must be 1 to {MAX_ID_LEN} characters long"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err("may only hold letters, digits, `_` and `-`".to_owned());
    }
    Ok(())
}

/// A fresh id: `evt_` then 26 characters of Crockford base32 holding the
/// millisecond time (so ids sort by creation) and 80 random bits.
pub fn generate_event_id(now: OffsetDateTime) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = (now.unix_timestamp_nanos() / 1_000_000) as u128 & ((1 << 48) - 1);
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let value = (millis << 80) | random.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
    let mut id = String::with_capacity(GENERATED_ID_PREFIX.len() + 26);
    id.push_str(GENERATED_ID_PREFIX);
    for index in (0..26).rev() {
        id.push(ALPHABET[((value >> (index * 5)) & 31) as usize] as char);
    }
    id
}

/// An RFC 3339 time rewritten in UTC with a `Z`, keeping the fractional
/// seconds exactly as given: `2025-03-20T12:30:00.120+02:00` becomes
/// `2025-03-20T10:30:00.120Z`. The UTC year must be 0001 to 9999, the
/// years RFC 3339 can write: `9999-12-31T23:30:00-01:00` is year 10000.
pub fn normalize_created_at(text: &str) -> Result<(OffsetDateTime, String), String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| format!("must be an RFC 3339 time like 2025-03-20T10:30:00Z ({error})"))?;
    let utc = parsed
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (1..=9999).contains(&utc.year()))
        .ok_or_else(|| "must fall between the years 0001 and 9999 in UTC".to_owned())?;
    let fraction = fraction_digits(text);
    Ok((utc, format_utc(utc, fraction)))
}

/// The time of receipt in the same shape, with millisecond precision.
/// `now` is a clock reading or a stored time, so its year is in range.
pub fn format_received_at(now: OffsetDateTime) -> String {
    let utc = now
        .checked_to_offset(UtcOffset::UTC)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_utc(utc, Some(&format!("{:03}", utc.millisecond())))
}

/// The digits after the seconds' decimal point, if the text has any.
fn fraction_digits(text: &str) -> Option<&str> {
    // RFC 3339: the seconds are the two digits after the second `:` of the
    // time; the fraction, if any, follows them.
    let time_start = text.find(['T', 't', ' '])? + 1;
    let seconds_end = time_start + 8;
    let rest = text.get(seconds_end..)?;
    let digits = rest.strip_prefix('.')?;
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    Some(&digits[..len])
}

/// Writes `utc` (already in UTC) as RFC 3339 with a `Z`.
fn format_utc(utc: OffsetDateTime, fraction: Option<&str>) -> String {
    let mut out = String::with_capacity(30);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    );
    if let Some(digits) = fraction {
        out.push('.');
        out.push_str(digits);
    }
    out.push('Z');
    out
}

/// The body subscribers receive: exactly these four keys, in this order.
/// Returns the body and the byte range `data` occupies in it.
pub fn wire_body(id: &str, event: &str, created_at: &str, data: &str) -> (Vec<u8>, std::ops::Range<usize>) {
    let mut body = Vec::with_capacity(64 + id.len() + event.len() + created_at.len() + data.len());
    body.extend_from_slice(b"{\"id\":");
    push_json_string(&mut body, id);
    body.extend_from_slice(b",\"event\":");
    push_json_string(&mut body, event);
    body.extend_from_slice(b",\"created_at\":");
    push_json_string(&mut body, created_at);
    body.extend_from_slice(b",\"data\":");
    let data_start = body.len();
    body.extend_from_slice(data.as_bytes());
    let data_end = body.len();
    body.push(b'}');
    (body, data_start..data_end)
}

/// An event hookd makes itself (a test ping, an operational event) for
/// `endpoint` alone: its id and `created_at` are now's, `data` is a JSON
/// object.
pub fn made_by_hookd(
    event: &str,
    data: &str,
    tenant: Option<String>,
    endpoint: &str,
    now: OffsetDateTime,
) -> crate::store::NewEvent {
    let id = generate_event_id(now);
    let created_at = format_received_at(now);
    let (body, data_range) = wire_body(&id, event, &created_at, data);
    crate::store::NewEvent {
        id,
        id_generated: true,
        event: event.to_owned(),
        created_at,
        created_at_given: false,
        tenant,
        ordering_key: None,
        keyed_endpoints: Vec::new(),
        body: body.into(),
        data: data_range,
        traceparent: None,
        endpoints: vec![endpoint.to_owned()],
        received_at: crate::clock::unix_millis(now),
    }
}

fn push_json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing a string to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_are_checked() {
        assert!(check_event_id("evt_abc-123_X").is_ok());
        assert!(check_event_id(&"a".repeat(128)).is_ok());
        assert!(check_event_id("").is_err());
        assert!(check_event_id(&"a".repeat(129)).is_err());
        assert!(check_event_id("evt.1").is_err());
        assert!(check_event_id("évt").is_err());
    }

    #[test]
    fn generated_ids_are_valid_unique_and_sorted_by_time() {
        let early = generate_event_id(datetime!(2025-03-20 10:30:00 UTC));
        let late = generate_event_id(datetime!(2025-03-20 10:30:01 UTC));
        assert!(early.starts_with("evt_") && early.len() == 30, "{early}");
        check_event_id(&early).unwrap();
        assert!(early < late);
        let now = OffsetDateTime::now_utc();
        assert_ne!(generate_event_id(now), generate_event_id(now));
    }

    #[test]
    fn created_at_is_rewritten_in_utc_keeping_the_fraction() {
        let normalized = |text| normalize_created_at(text).unwrap().1;
        assert_eq!(normalized("2025-03-20T10:30:00Z"), "2025-03-20T10:30:00Z");
        assert_eq!(normalized("2025-03-20T12:30:00+02:00"), "2025-03-20T10:30:00Z");
        assert_eq!(normalized("2025-03-20T12:30:00.120+02:00"), "2025-03-20T10:30:00.120Z");
        assert_eq!(normalized("2025-03-20t10:30:00.5z"), "2025-03-20T10:30:00.5Z");
        assert_eq!(normalized("2025-03-21T00:30:00-01:00"), "2025-03-21T01:30:00Z");
        assert!(normalize_created_at("2025-03-20").is_err());
        assert!(normalize_created_at("yesterday").is_err());
        assert!(normalize_created_at("2025-13-20T10:30:00Z").is_err());
    }

    #[test]
    fn created_at_stays_within_the_years_rfc_3339_can_write() {
        let normalized = |text| normalize_created_at(text).map(|(_, text)| text);
        assert_eq!(normalized("9999-12-31T23:59:59Z").unwrap(), "9999-12-31T23:59:59Z");
        assert_eq!(normalized("0001-01-01T00:00:00Z").unwrap(), "0001-01-01T00:00:00Z");
        assert_eq!(normalized("9999-12-31T23:30:00+01:00").unwrap(), "9999-12-31T22:30:00Z");
        for out_of_range in [
            "9999-12-31T23:30:00-01:00",
            "0000-01-01T00:00:00+00:01",
            "0001-01-01T00:00:00+00:01",
            "0000-06-01T00:00:00Z",
        ] {
            let error = normalized(out_of_range).unwrap_err();
            assert!(error.contains("0001 and 9999"), "{out_of_range}: {error}");
        }
    }

    #[test]
    fn received_at_has_milliseconds() {
        let at = datetime!(2025-03-20 10:30:00.042 UTC);
        assert_eq!(format_received_at(at), "2025-03-20T10:30:00.042Z");
    }

    #[test]
    fn the_body_has_four_keys_in_order_with_data_untouched() {
        let data = r#"{"price": 1.0, "name":"Zoë"}"#;
        let (body, range) = wire_body("evt_1", "payment.completed", "2025-03-20T10:30:00Z", data);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"id":"evt_1","event":"payment.completed","created_at":"2025-03-20T10:30:00Z","data":{"price": 1.0, "name":"Zoë"}}"#
        );
        assert_eq!(&body[range], data.as_bytes());
    }
}
