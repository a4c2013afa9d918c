//! Time as the API shows it: RFC 3339 UTC with milliseconds, so text order is time order.

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const RFC3339_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The current time (UTC).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `2026-11-25T01:02:03.456Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(RFC3339_MILLIS)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Seconds since the Unix epoch, `hours` after `at` (for DynamoDB TTL attributes).
pub fn epoch_after_hours(at: OffsetDateTime, hours: u32) -> i64 {
    at.unix_timestamp() + i64::from(hours) * 3600
}

/// The UTC date of `at`, `2026-11-25`.
pub fn date_of(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_with_millis_in_utc() {
        assert_eq!(
            rfc3339(datetime!(2026-11-25 01:02:03.456789 UTC)),
            "2026-11-25T01:02:03.456Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-11-25 03:02:03 +2)),
            "2026-11-25T01:02:03.000Z"
        );
        assert_eq!(epoch_after_hours(datetime!(1970-01-01 00:00 UTC), 2), 7200);
    }
}
