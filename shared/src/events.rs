//! The per-tenant event log: every state change writes one domain event in the same
//! transaction as the change. Real-time delivery (WebSocket, SSE) reads only from here.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::Serialize;
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
