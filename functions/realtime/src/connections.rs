//! The connections table: one item per open WebSocket connection and one per subscription.
//!
//! | item | PK | SK | index `ByChannel` |
//! |---|---|---|---|
//! | connection | `CONN#<connection id>` | `CONNECTION` | — |
//! | subscription | `CONN#<connection id>` | `SUB#<channel>` | `channel_key` = `<tenant>#<channel>`, `connection_id` |
//!
//! Fan-out finds a tenant's subscribers of a channel with one Query on `ByChannel`; a
//! disconnect removes a connection's items with one Query on its partition. Every item
//! expires (`expires_at`) shortly after API Gateway's two-hour connection limit, so a lost
//! `$disconnect` leaves nothing behind for long.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use serde::{Deserialize, Serialize};
use vocelio_shared::dynamo::{Item, from_record, sdk_error, transaction_cancellation};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, Role};

use crate::channels::{Channel, Filters};

/// Partition key attribute of the connections table.
pub const PK: &str = "PK";
/// Sort key attribute of the connections table.
pub const SK: &str = "SK";
/// The index that lists a tenant's subscribers of a channel.
pub const BY_CHANNEL: &str = "ByChannel";
/// Its partition key.
pub const CHANNEL_KEY: &str = "channel_key";
/// Its sort key.
pub const CONNECTION_ID: &str = "connection_id";
/// API Gateway closes every WebSocket connection after two hours; items live a little longer.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 600;

const CONNECTION_SK: &str = "CONNECTION";

fn connection_pk(connection_id: &str) -> String {
    format!("CONN#{connection_id}")
}

fn subscription_sk(channel: Channel) -> String {
    format!("SUB#{}", channel.as_str())
}

/// The index partition of `tenant`'s subscribers of `channel`.
pub fn channel_key(tenant: &str, channel: Channel) -> String {
    format!("{tenant}#{}", channel.as_str())
}

/// An open connection, as `$connect` recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub connection_id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub role: Role,
    /// The agent's department when the user is an agent.
    pub department: Option<String>,
    /// The management API endpoint that reaches this connection.
    pub endpoint: String,
    pub connected_at: String,
    pub expires_at: i64,
}

/// A connection's subscription to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub connection_id: String,
    pub tenant_id: String,
    pub channel: Channel,
    #[serde(default)]
    pub filters: Filters,
    /// Also send the guide's `transfer_status` summaries (clients of `/ws/transfers`).
    #[serde(default)]
    pub summary: bool,
    /// The management API endpoint that reaches the connection.
    pub endpoint: String,
    pub expires_at: i64,
}

/// The connections table.
#[derive(Debug, Clone)]
pub struct ConnectionStore {
    db: aws_sdk_dynamodb::Client,
    table: String,
}

impl ConnectionStore {
    /// The store over `table`.
    pub fn new(db: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            db,
            table: table.into(),
        }
    }

    fn connection_item(connection: &Connection) -> ApiResult<Item> {
        let mut item: Item = serde_dynamo::to_item(connection).map_err(ApiError::internal)?;
        item.insert(
            PK.into(),
            AttributeValue::S(connection_pk(&connection.connection_id)),
        );
        item.insert(SK.into(), AttributeValue::S(CONNECTION_SK.into()));
        Ok(item)
    }

    fn subscription_item(subscription: &Subscription) -> ApiResult<Item> {
        let mut item: Item = serde_dynamo::to_item(subscription).map_err(ApiError::internal)?;
        item.insert(
            PK.into(),
            AttributeValue::S(connection_pk(&subscription.connection_id)),
        );
        item.insert(
            SK.into(),
            AttributeValue::S(subscription_sk(subscription.channel)),
        );
        item.insert(
            CHANNEL_KEY.into(),
            AttributeValue::S(channel_key(&subscription.tenant_id, subscription.channel)),
        );
        Ok(item)
    }

    fn put(&self, item: Item, condition: Option<&str>) -> ApiResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Records a new connection, with its first subscription when it connected pre-subscribed.
    pub async fn open(
        &self,
        connection: &Connection,
        subscription: Option<&Subscription>,
    ) -> ApiResult<()> {
        let mut actions = vec![self.put(Self::connection_item(connection)?, None)?];
        if let Some(subscription) = subscription {
            actions.push(self.put(Self::subscription_item(subscription)?, None)?);
        }
        self.db
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// The connection `connection_id`, if it is still recorded.
    pub async fn connection(&self, connection_id: &str) -> ApiResult<Option<Connection>> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(connection_pk(connection_id)))
            .key(SK, AttributeValue::S(CONNECTION_SK.into()))
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.map(from_record).transpose()
    }

    /// Adds or replaces a subscription, only while its connection is still recorded
    /// (a subscribe racing a disconnect leaves nothing behind). `false`: the connection is gone.
    pub async fn subscribe(&self, subscription: &Subscription) -> ApiResult<bool> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(
                PK,
                AttributeValue::S(connection_pk(&subscription.connection_id)),
            )
            .key(SK, AttributeValue::S(CONNECTION_SK.into()))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(ApiError::internal)?;
        let result = self
            .db
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(self.put(Self::subscription_item(subscription)?, None)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match transaction_cancellation(err)? {
                cancellation if cancellation.condition_failed(0) => Ok(false),
                other => Err(ApiError::internal(format!(
                    "subscribe cancelled: {other:?}"
                ))),
            },
        }
    }

    /// Removes a subscription (no-op when absent).
    pub async fn unsubscribe(&self, connection_id: &str, channel: Channel) -> ApiResult<()> {
        self.db
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(connection_pk(connection_id)))
            .key(SK, AttributeValue::S(subscription_sk(channel)))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Removes a connection and all its subscriptions.
    pub async fn close(&self, connection_id: &str) -> ApiResult<usize> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(connection_pk(connection_id)))
            .projection_expression("PK, SK")
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let mut pending: Vec<WriteRequest> = Vec::new();
        for key in out.items.unwrap_or_default() {
            let delete = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(ApiError::internal)?;
            pending.push(WriteRequest::builder().delete_request(delete).build());
        }
        let removed = pending.len();
        // A connection has at most 1 + 5 items: one batch; unprocessed items are retried.
        let mut attempt = 0;
        while !pending.is_empty() {
            let out = self
                .db
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(sdk_error)?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            attempt += 1;
            if attempt >= 5 && !pending.is_empty() {
                return Err(ApiError::internal(
                    "removing a connection: items left unprocessed after 5 attempts",
                ));
            }
            if !pending.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
        }
        Ok(removed)
    }

    /// Every subscription of `tenant` to `channel` (one Query on `ByChannel`, paginated).
    pub async fn subscribers(
        &self,
        tenant: &TenantId,
        channel: Channel,
    ) -> ApiResult<Vec<Subscription>> {
        let mut pages = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(BY_CHANNEL)
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", CHANNEL_KEY)
            .expression_attribute_values(
                ":k",
                AttributeValue::S(channel_key(tenant.as_str(), channel)),
            )
            .into_paginator()
            .items()
            .send();
        let mut subscriptions = Vec::new();
        while let Some(item) = pages.next().await {
            let item: HashMap<String, AttributeValue> = item.map_err(sdk_error)?;
            subscriptions.push(from_record(item)?);
        }
        Ok(subscriptions)
    }
}
