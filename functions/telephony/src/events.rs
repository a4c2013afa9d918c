//! The consumer of the event log's stream (DynamoDB Streams → Lambda, filtered to transfer
//! events): each transfer event of a Twilio call gets its phone side (see
//! [`crate::transfer`]). A failed event fails the batch, so Lambda retries it; the legs'
//! markers keep a retry from dialling twice.

use serde::Serialize;
use serde_json::Value;
use vocelio_shared::events::events_of_batch;
use vocelio_shared::{ApiError, ApiResult};

use crate::service::Telephony;
use crate::transfer;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventsReport {
    /// Event-log records in the batch.
    pub events: usize,
    /// Events acted on without error.
    pub handled: usize,
}

/// Handles a DynamoDB Streams batch.
pub async fn handle_batch(tel: &Telephony, batch: &Value) -> ApiResult<EventsReport> {
    let events = events_of_batch(batch);
    let mut report = EventsReport {
        events: events.len(),
        handled: 0,
    };
    let mut first_error: Option<ApiError> = None;
    for event in &events {
        match transfer::on_event(tel, event).await {
            Ok(()) => report.handled += 1,
            Err(err) => {
                tracing::warn!(error = %err, event = %event.event.event_id, kind = %event.event.event_type, "telephony event failed");
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(report),
    }
}
