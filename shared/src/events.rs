//! The per-tenant event log: every state change writes one domain event in the same
//! transaction as the change. Real-time delivery (WebSocket, SSE) reads only from here;
//! the stream consumers (fan-out, telephony) read its inserts from DynamoDB Streams batches.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::clock;
use crate::dynamo::{Item, n, s};
use crate::error::{ApiError, ApiResult};
use crate::ids::{TenantId, new_id};
use crate::keys;
use crate::state::AppState;

/// Event types, as clients see them in `type`.
pub mod types {
    /// A department was created.
    pub const DEPARTMENT_CREATED: &str = "department_created";
    /// A department's fields changed.
    pub const DEPARTMENT_UPDATED: &str = "department_updated";
    /// A department was deactivated (soft-deleted).
    pub const DEPARTMENT_DELETED: &str = "department_deleted";
    /// An agent was registered.
    pub const AGENT_REGISTERED: &str = "agent_registered";
    /// An agent was deregistered.
    pub const AGENT_DEREGISTERED: &str = "agent_deregistered";
    /// An agent's status changed.
    pub const AGENT_STATUS_CHANGED: &str = "agent_status_changed";
    /// A call was registered or its status changed.
    pub const CALL_STATUS_UPDATE: &str = "call_status_update";
    /// A call ended.
    pub const CALL_ENDED: &str = "call_ended";
    /// A transfer was requested.
    pub const TRANSFER_INITIATED: &str = "transfer_initiated";
    /// A transfer was offered to an agent.
    pub const TRANSFER_ASSIGNED: &str = "transfer_assigned";
    /// A transfer entered its department's queue.
    pub const TRANSFER_QUEUED: &str = "transfer_queued";
    /// The agent accepted; the caller is with them.
    pub const TRANSFER_ACCEPTED: &str = "transfer_accepted";
    /// The agent declined, or let the offer lapse.
    pub const TRANSFER_DECLINED: &str = "transfer_declined";
    /// The agent finished with the caller.
    pub const TRANSFER_COMPLETED: &str = "transfer_completed";
    /// The transfer could not be carried out.
    pub const TRANSFER_FAILED: &str = "transfer_failed";
    /// The transfer was withdrawn (caller hung up, AI resolved it).
    pub const TRANSFER_CANCELLED: &str = "transfer_cancelled";
    /// A department's queue changed (entered, left, re-ordered).
    pub const QUEUE_UPDATED: &str = "queue_updated";
    /// A contact was created.
    pub const CONTACT_CREATED: &str = "contact_created";
    /// A contact's fields or status changed.
    pub const CONTACT_UPDATED: &str = "contact_updated";
    /// A contact was deleted.
    pub const CONTACT_DELETED: &str = "contact_deleted";
    /// A contact list was created.
    pub const CONTACT_LIST_CREATED: &str = "contact_list_created";
    /// A contact list's fields changed.
    pub const CONTACT_LIST_UPDATED: &str = "contact_list_updated";
    /// A contact list was archived or deleted.
    pub const CONTACT_LIST_DELETED: &str = "contact_list_deleted";
    /// Contacts joined or left a list (bulk changes: one event per request).
    pub const CONTACT_LIST_MEMBERS_CHANGED: &str = "contact_list_members_changed";
    /// Contacts changed in bulk (one event per request).
    pub const CONTACT_BULK_UPDATED: &str = "contact_bulk_updated";
    /// Numbers were added to or removed from a do-not-call list.
    pub const DNC_LIST_UPDATED: &str = "dnc_list_updated";
    /// An import job moved on (every `IMPORT_PROGRESS_ROWS` rows, and at its end).
    pub const IMPORT_PROGRESS: &str = "import_progress";
}

/// A domain event about to be written.
#[derive(Debug, Clone)]
pub struct DomainEvent {
    /// Time-ordered id (`evt_...`): clients resume from it.
    pub id: String,
    /// One of [`types`].
    pub event_type: &'static str,
    /// The event's payload (the record after the change).
    pub data: serde_json::Value,
    /// When it happened.
    pub at: OffsetDateTime,
}

impl DomainEvent {
    /// A new event of `event_type` carrying `data`.
    pub fn new(
        event_type: &'static str,
        data: &impl Serialize,
        at: OffsetDateTime,
    ) -> ApiResult<Self> {
        Ok(Self {
            id: new_id("evt"),
            event_type,
            data: serde_json::to_value(data).map_err(ApiError::internal)?,
            at,
        })
    }

    /// The transaction action that appends this event to `tenant`'s log.
    pub fn put(&self, state: &AppState, tenant: &TenantId) -> ApiResult<TransactWriteItem> {
        let data = serde_dynamo::to_attribute_value(&self.data).map_err(ApiError::internal)?;
        let item: Item = [
            (keys::PK.to_owned(), s(keys::events_pk(tenant))),
            (keys::SK.to_owned(), s(&self.id)),
            (keys::ENTITY.to_owned(), s("event")),
            ("event_id".to_owned(), s(&self.id)),
            ("type".to_owned(), s(self.event_type)),
            ("tenant_id".to_owned(), s(tenant.as_str())),
            ("at".to_owned(), s(clock::rfc3339(self.at))),
            ("data".to_owned(), data),
            (
                keys::EXPIRES_AT.to_owned(),
                n(clock::epoch_after_hours(
                    self.at,
                    state.config.event_ttl_hours,
                )),
            ),
        ]
        .into_iter()
        .collect();
        let put = Put::builder()
            .table_name(state.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// One domain event as written by the functions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogEvent {
    /// `evt_<uuid v7>`: sorts by time.
    pub event_id: String,
    /// The event type (`transfer_initiated`, ...).
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339).
    pub at: String,
    /// Its payload.
    pub data: serde_json::Value,
}

/// Converts a DynamoDB JSON value (`{"S": "x"}`, `{"M": {...}}`, ...) into plain JSON.
pub fn plain(value: &Value) -> Value {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return Value::Null;
    };
    match (kind.as_str(), inner) {
        ("S", v) => v.clone(),
        ("N", Value::String(n)) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.clone())),
        ("BOOL", v) => v.clone(),
        ("NULL", _) => Value::Null,
        ("M", Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), plain(v)))
                .collect::<Map<_, _>>(),
        ),
        ("L", Value::Array(items)) => Value::Array(items.iter().map(plain).collect()),
        ("SS" | "BS", v) => v.clone(),
        ("NS", Value::Array(items)) => {
            Value::Array(items.iter().map(|n| plain(&json!({ "N": n }))).collect())
        }
        ("B", v) => v.clone(),
        _ => Value::Null,
    }
}

/// One event-log record of a stream batch.
#[derive(Debug, Clone)]
pub struct StreamedEvent {
    pub tenant: TenantId,
    pub event: LogEvent,
}

/// The event-log inserts of a DynamoDB Streams batch, in stream order; other records
/// (updates, removals, other items) are skipped.
pub fn events_of_batch(batch: &Value) -> Vec<StreamedEvent> {
    let records = batch
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    records
        .iter()
        .filter(|r| r.get("eventName").and_then(Value::as_str) == Some("INSERT"))
        .filter_map(|r| r.pointer("/dynamodb/NewImage"))
        .map(|image| plain(&json!({ "M": image })))
        .filter(|item| item.get("entity").and_then(Value::as_str) == Some("event"))
        .filter_map(|item| {
            let tenant = TenantId::parse(item.get("tenant_id")?.as_str()?).ok()?;
            let event = serde_json::from_value::<LogEvent>(item).ok()?;
            Some(StreamedEvent { tenant, event })
        })
        .collect()
}
