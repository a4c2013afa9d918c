//! Small helpers: RFC 2822 dates, SIDs, number and URL checks, prices.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// Twilio's date format: `Tue, 31 Aug 2010 20:36:28 +0000`.
pub(crate) fn rfc2822(at: OffsetDateTime) -> String {
    at.format(&Rfc2822).unwrap_or_default()
}

/// Now, as the wall clock says (dates are never scaled; see the crate docs).
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A fresh SID: `prefix` and 32 lowercase hex digits, unique within the process.
pub(crate) fn new_sid(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let high = keys.hash_one((n, 0u8));
    // The low half keeps the counter readable in logs and guarantees uniqueness.
    let low = (keys.hash_one((n, 1u8)) & 0xffff_ffff_0000_0000) | (n & 0xffff_ffff);
    format!("{prefix}{high:016x}{low:016x}")
}

/// 32 random lowercase hex digits (an auth token).
pub(crate) fn random_hex32() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:016x}{:016x}",
        keys.hash_one((n, 2u8)),
        keys.hash_one((n, 3u8))
    )
}

/// Twilio's default subaccount name: `SubAccount Created at 2024-01-31 03:04 pm`.
pub(crate) fn default_subaccount_name(at: OffsetDateTime) -> String {
    let (hour, meridian) = match at.hour() {
        0 => (12, "am"),
        h @ 1..=11 => (h, "am"),
        12 => (12, "pm"),
        h => (h - 12, "pm"),
    };
    format!(
        "SubAccount Created at {:04}-{:02}-{:02} {hour:02}:{:02} {meridian}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.minute()
    )
}

/// Whether `value` is `prefix` followed by 32 hex digits.
pub(crate) fn is_sid(prefix: &str, value: &str) -> bool {
    telephony::callback::is_sid(prefix, value)
}

/// E.164: `+`, a non-zero digit, at most 15 digits in all.
pub(crate) fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A `client:<identity>` address with a non-empty identity.
pub(crate) fn is_client(value: &str) -> bool {
    value
        .strip_prefix("client:")
        .is_some_and(|id| !id.trim().is_empty())
}

/// A `sip:` address with something after the scheme.
pub(crate) fn is_sip(value: &str) -> bool {
    value
        .strip_prefix("sip:")
        .is_some_and(|rest| !rest.trim().is_empty())
}

/// An absolute `http`/`https` URL with a host.
pub(crate) fn is_http_url(value: &str) -> bool {
    url::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// How Twilio shows a number: `(415) 555-0123` for North American numbers, else as given.
pub(crate) fn formatted(number: &str) -> String {
    match number.strip_prefix("+1") {
        Some(rest) if rest.len() == 10 && rest.chars().all(|c| c.is_ascii_digit()) => {
            format!("({}) {}-{}", &rest[..3], &rest[3..6], &rest[6..])
        }
        _ => number.to_owned(),
    }
}

/// USD per started minute: outbound legs (`outbound-api`, `outbound-dial`) and inbound.
pub(crate) const OUTBOUND_PER_MINUTE: f64 = 0.014;
/// USD per started minute for inbound calls.
pub(crate) const INBOUND_PER_MINUTE: f64 = 0.0085;

/// Minutes billed for `seconds`: every started minute.
pub(crate) fn billed_minutes(seconds: u64) -> u64 {
    seconds.div_ceil(60)
}

/// The price of a finished call: negative, 5 decimals; `None` when nothing was billed.
pub(crate) fn price(inbound: bool, seconds: u64) -> Option<String> {
    if seconds == 0 {
        return None;
    }
    let rate = if inbound {
        INBOUND_PER_MINUTE
    } else {
        OUTBOUND_PER_MINUTE
    };
    // Billed minutes are small integers; f64 is exact enough at 5 decimals.
    let amount = billed_minutes(seconds) as f64 * rate;
    Some(format!("-{amount:.5}"))
}

/// Parses a Twilio boolean (`true`/`false`, any case).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Decodes `%XX` escapes of a path segment (invalid escapes stay as written).
pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sids_and_prices() {
        assert!(is_e164("+14155550123"));
        assert!(!is_e164("+04155550123"));
        assert!(!is_e164("14155550123"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1415555012345678"));
        assert!(is_client("client:agent_1"));
        assert!(!is_client("client:"));
        assert!(is_sip("sip:alice@example.com"));
        let a = new_sid("CA");
        let b = new_sid("CA");
        assert!(is_sid("CA", &a), "{a}");
        assert_ne!(a, b);
        assert_eq!(price(false, 0), None);
        assert_eq!(price(false, 1).as_deref(), Some("-0.01400"));
        assert_eq!(price(false, 61).as_deref(), Some("-0.02800"));
        assert_eq!(price(true, 60).as_deref(), Some("-0.00850"));
        assert_eq!(price(true, 125).as_deref(), Some("-0.02550"));
        assert_eq!(formatted("+14155550123"), "(415) 555-0123");
        assert_eq!(formatted("+447700900123"), "+447700900123");
        assert!(is_http_url("http://127.0.0.1:80/x?y=1"));
        assert!(!is_http_url("ftp://example.com/x"));
        assert!(!is_http_url("notaurl"));
        let date = rfc2822(time::macros::datetime!(2010-08-31 20:36:28 UTC));
        assert_eq!(date, "Tue, 31 Aug 2010 20:36:28 +0000");
        assert_eq!(percent_decode("room%201%zz"), "room 1%zz");
        let token = random_hex32();
        assert!(token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(token, random_hex32());
        assert_eq!(
            default_subaccount_name(time::macros::datetime!(2024-01-31 15:04:59 UTC)),
            "SubAccount Created at 2024-01-31 03:04 pm"
        );
        assert_eq!(
            default_subaccount_name(time::macros::datetime!(2024-01-31 00:30 UTC)),
            "SubAccount Created at 2024-01-31 12:30 am"
        );
    }
}
