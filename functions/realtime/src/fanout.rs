//! Fan-out: DynamoDB Streams on the core table invoke this with batches of new event-log
//! items (the event source mapping filters on `entity = event`); each event goes to the
//! tenant's subscribers of its channel whose filters match, and `/ws/transfers` clients get
//! the guide's `transfer_status` summary after a batch that changed transfers. The HTTP
//! request that wrote the event has long returned: its latency does not depend on how many
//! screens listen.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;
use serde_json::{Value, json};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, clock};

use crate::Realtime;
use crate::channels::{Channel, event_frame, facets, matches};
use crate::connections::Subscription;
use crate::delivery::Delivery;
pub use vocelio_shared::events::{StreamedEvent, events_of_batch, plain};

/// What one batch did (logged; also the function's result).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FanoutReport {
    /// Event-log records in the batch.
    pub events: usize,
    /// Frames accepted by API Gateway.
    pub delivered: usize,
    /// Connections found gone (410) and removed.
    pub gone: usize,
    /// Frames that failed otherwise (the connection is kept).
    pub failed: usize,
    /// `transfer_status` summaries sent.
    pub summaries: usize,
}

/// Whether an event changes what the `transfer_status` summary shows.
fn changes_transfers(event_type: &str) -> bool {
    event_type.starts_with("transfer_")
        || event_type == "queue_updated"
        || event_type == "agent_status_changed"
}

impl Realtime {
    /// Delivers a DynamoDB Streams batch. An error (the connections table unreachable) fails
    /// the batch so Lambda retries it; clients tell repeats apart by the event `id`.
    pub async fn handle_stream(&self, batch: &Value) -> ApiResult<FanoutReport> {
        let events = events_of_batch(batch);
        let mut report = FanoutReport {
            events: events.len(),
            ..FanoutReport::default()
        };
        let mut subscribers: HashMap<(String, Channel), Vec<Subscription>> = HashMap::new();
        let mut gone: HashSet<String> = HashSet::new();
        let mut summary_tenants: Vec<TenantId> = Vec::new();
        for StreamedEvent { tenant, event } in &events {
            let Some(channel) = Channel::of_event(&event.event_type) else {
                continue;
            };
            if changes_transfers(&event.event_type) && !summary_tenants.contains(tenant) {
                summary_tenants.push(tenant.clone());
            }
            let key = (tenant.as_str().to_owned(), channel);
            if !subscribers.contains_key(&key) {
                let found = self.connections.subscribers(tenant, channel).await?;
                subscribers.insert(key.clone(), found);
            }
            let event_facets = facets(event);
            let targets: Vec<&Subscription> = subscribers
                .get(&key)
                .map(|subs| {
                    subs.iter()
                        .filter(|s| !gone.contains(&s.connection_id))
                        .filter(|s| matches(&s.filters, &event_facets))
                        .collect()
                })
                .unwrap_or_default();
            if targets.is_empty() {
                continue;
            }
            let frame = event_frame(event, channel).to_string().into_bytes();
            self.send_all(&targets, &frame, &mut report, &mut gone)
                .await;
        }
        for tenant in summary_tenants {
            let key = (tenant.as_str().to_owned(), Channel::Transfers);
            if !subscribers.contains_key(&key) {
                let found = self
                    .connections
                    .subscribers(&tenant, Channel::Transfers)
                    .await?;
                subscribers.insert(key.clone(), found);
            }
            let targets: Vec<&Subscription> = subscribers
                .get(&key)
                .map(|subs| {
                    subs.iter()
                        .filter(|s| s.summary && !gone.contains(&s.connection_id))
                        .collect()
                })
                .unwrap_or_default();
            if targets.is_empty() {
                continue;
            }
            let dashboard = transfers::dashboard::dashboard(&self.app, &tenant).await?;
            let frame = json!({
                "type": "transfer_status",
                "channel": Channel::Transfers,
                "data": dashboard,
                "at": clock::rfc3339(clock::now()),
            })
            .to_string()
            .into_bytes();
            let before = report.delivered;
            self.send_all(&targets, &frame, &mut report, &mut gone)
                .await;
            report.summaries += report.delivered - before;
            report.delivered = before;
        }
        for connection_id in &gone {
            if let Err(err) = self.connections.close(connection_id).await {
                tracing::warn!(connection_id, error = %err, "removing a gone connection failed");
            }
        }
        if report.events > 0 {
            tracing::info!(?report, "fan-out batch");
        }
        Ok(report)
    }

    async fn send_all(
        &self,
        targets: &[&Subscription],
        frame: &[u8],
        report: &mut FanoutReport,
        gone: &mut HashSet<String>,
    ) {
        let concurrency = self.app.config.websocket_fanout_concurrency as usize;
        let frame: std::sync::Arc<[u8]> = frame.into();
        let jobs: Vec<(String, String)> = targets
            .iter()
            .map(|s| (s.endpoint.clone(), s.connection_id.clone()))
            .collect();
        let poster = self.poster.clone();
        let outcomes: Vec<(String, Delivery)> =
            stream::iter(jobs.into_iter().map(move |(endpoint, connection_id)| {
                let poster = poster.clone();
                let data = frame.to_vec();
                async move {
                    let delivery = poster.post(&endpoint, &connection_id, data).await;
                    (connection_id, delivery)
                }
            }))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (connection_id, delivery) in outcomes {
            match delivery {
                Delivery::Delivered => report.delivered += 1,
                Delivery::Gone => {
                    report.gone += 1;
                    gone.insert(connection_id);
                }
                Delivery::Failed(why) => {
                    report.failed += 1;
                    tracing::warn!(connection_id, error = %why, "frame not delivered");
                }
            }
        }
    }
}

/// Dispatches one Lambda invocation of the realtime function: a DynamoDB Streams batch, or
/// an API Gateway WebSocket event.
pub async fn dispatch(realtime: &Realtime, payload: Value) -> Result<Value, ApiError> {
    if payload.get("Records").is_some() {
        let report = realtime.handle_stream(&payload).await?;
        return serde_json::to_value(report).map_err(ApiError::internal);
    }
    if payload.pointer("/requestContext/connectionId").is_some() {
        let event = serde_json::from_value(payload).map_err(|e| {
            ApiError::bad_request(
                "invalid_event",
                format!("not an API Gateway WebSocket event: {e}"),
            )
        })?;
        return Ok(realtime.handle_websocket(event).await);
    }
    Err(ApiError::bad_request(
        "invalid_event",
        "expected a DynamoDB Streams batch or an API Gateway WebSocket event",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_images_become_plain_json_and_only_event_inserts_count() {
        let batch = json!({"Records": [
            {"eventName": "INSERT", "dynamodb": {"NewImage": {
                "PK": {"S": "TENANT#t1#EVENTS"}, "SK": {"S": "evt_1"}, "entity": {"S": "event"},
                "event_id": {"S": "evt_1"}, "type": {"S": "transfer_queued"}, "tenant_id": {"S": "t1"},
                "at": {"S": "2026-11-25T10:00:00Z"},
                "data": {"M": {"call_id": {"S": "c1"}, "position": {"N": "3"}, "ratio": {"N": "0.5"},
                    "skills": {"L": [{"S": "es"}]}, "agent_id": {"NULL": true}, "vip": {"BOOL": true}}}
            }}},
            {"eventName": "MODIFY", "dynamodb": {"NewImage": {"entity": {"S": "event"}}}},
            {"eventName": "INSERT", "dynamodb": {"NewImage": {"entity": {"S": "call"}, "tenant_id": {"S": "t1"}}}}
        ]});
        let events = events_of_batch(&batch);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.tenant.as_str(), "t1");
        assert_eq!(e.event.event_type, "transfer_queued");
        assert_eq!(
            e.event.data,
            json!({"call_id": "c1", "position": 3, "ratio": 0.5, "skills": ["es"], "agent_id": null, "vip": true})
        );
    }
}
