//! Reading the tenant's event log: every state change, in order, by time-ordered id.

use aws_sdk_dynamodb::types::AttributeValue;
use vocelio_shared::dynamo::{from_record, sdk_error};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiResult, AppState, keys};

pub use vocelio_shared::events::LogEvent;

/// Whether `id` has the shape of an event id (so it can bound a Query).
pub fn is_event_id(id: &str) -> bool {
    vocelio_shared::ids::is_id("evt", id)
}

/// The smallest event id that is not older than `at`: UUID v7 starts with the Unix time in
/// milliseconds, so every event written from `at` on sorts after it.
pub fn position_at(at: time::OffsetDateTime) -> String {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    format!("evt_{:012x}{}", millis & 0xffff_ffff_ffff, "0".repeat(20))
}

/// Up to `limit` events of `tenant` after `after`, oldest first (consistent read).
pub async fn events_after(
    state: &AppState,
    tenant: &TenantId,
    after: &str,
    limit: i32,
) -> ApiResult<Vec<LogEvent>> {
    let out = state
        .db
        .query()
        .table_name(state.table())
        .key_condition_expression("PK = :pk AND SK > :after")
        .expression_attribute_values(":pk", AttributeValue::S(keys::events_pk(tenant)))
        .expression_attribute_values(":after", AttributeValue::S(after.to_owned()))
        .consistent_read(true)
        .limit(limit)
        .send()
        .await
        .map_err(sdk_error)?;
    out.items
        .unwrap_or_default()
        .into_iter()
        .map(from_record)
        .collect()
}

/// An event as the log holds it, for tests.
#[cfg(test)]
pub(crate) fn sample_event(kind: &str, data: serde_json::Value) -> LogEvent {
    LogEvent {
        event_id: "evt_1".into(),
        event_type: kind.into(),
        at: "2026-11-25T10:00:00.000Z".into(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_position_sorts_before_every_later_event_and_after_earlier_ones() {
        // A moment in the past: events made now sort after it.
        let at = datetime!(2024-01-01 10:00 UTC);
        let position = position_at(at);
        assert!(is_event_id(&position));
        let earlier = position_at(at - time::Duration::milliseconds(1));
        assert!(earlier < position);
        let now_id = vocelio_shared::ids::new_id("evt");
        assert!(now_id > position, "{now_id} should sort after {position}");
    }
}
