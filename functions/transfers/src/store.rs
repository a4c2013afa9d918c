//! Storage of calls, transfers, queues, agents (as the engine claims them) and statistics.
//! Every write is a transaction action; the engine commits a change and its events together.

use aws_sdk_dynamodb::types::{AttributeValue, Select, TransactWriteItem};
use vocelio_shared::agent::{Agent, AgentStatus};
use vocelio_shared::dynamo::{
    Item, create_action, from_record, record_item, replace_action, s, sdk_error,
};
use vocelio_shared::error::{ApiError, ApiResult};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{AppState, keys};

use crate::model::{Call, Transfer, TransferStatus};

/// The engine's view of one tenant's data.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    pub state: &'a AppState,
    pub tenant: &'a TenantId,
}

impl<'a> Store<'a> {
    /// The store of `tenant`.
    pub fn new(state: &'a AppState, tenant: &'a TenantId) -> Self {
        Self { state, tenant }
    }

    fn table(&self) -> &str {
        self.state.table()
    }

    /// A call's item: GSI1 orders the tenant's calls by start time (logs); GSI2 holds it
    /// while it has not ended (the Live Call Monitor).
    pub fn call_item(&self, call: &Call) -> ApiResult<Item> {
        let time_sk = keys::call_time_sk(&call.start_time, &call.call_id);
        let mut item_keys = vec![
            (keys::PK, keys::call_pk(self.tenant, &call.call_id)),
            (keys::SK, keys::CALL_SK.to_owned()),
            (keys::ENTITY, "call".to_owned()),
            (keys::GSI1PK, keys::calls_by_time_pk(self.tenant)),
            (keys::GSI1SK, time_sk.clone()),
        ];
        if !call.status.is_ended() {
            item_keys.push((keys::GSI2PK, keys::active_calls_pk(self.tenant)));
            item_keys.push((keys::GSI2SK, time_sk));
        }
        record_item(call, item_keys)
    }

    /// A transfer's item: GSI1 orders the tenant's transfers by request time (analytics);
    /// GSI2 is its department queue while queued; GSI3 the offer timer while assigned.
    pub fn transfer_item(&self, transfer: &Transfer) -> ApiResult<Item> {
        let mut item_keys = vec![
            (
                keys::PK,
                keys::transfer_pk(self.tenant, &transfer.transfer_id),
            ),
            (keys::SK, keys::TRANSFER_SK.to_owned()),
            (keys::ENTITY, "transfer".to_owned()),
            (keys::GSI1PK, keys::transfers_by_time_pk(self.tenant)),
            (
                keys::GSI1SK,
                format!("{}#{}", transfer.requested_at, transfer.transfer_id),
            ),
        ];
        if transfer.status == TransferStatus::Queued {
            item_keys.push((
                keys::GSI2PK,
                keys::queue_pk(self.tenant, &transfer.department_id),
            ));
            item_keys.push((
                keys::GSI2SK,
                keys::queue_sk(
                    transfer.urgency_level.rank(),
                    &transfer.requested_at,
                    &transfer.transfer_id,
                ),
            ));
        }
        if let (TransferStatus::Assigned, Some(due)) = (transfer.status, &transfer.offer_expires_at)
        {
            item_keys.push((keys::GSI3PK, keys::TIMERS_PK.to_owned()));
            item_keys.push((
                keys::GSI3SK,
                keys::timer_sk(due, self.tenant, "TRANSFER", &transfer.transfer_id),
            ));
        }
        record_item(transfer, item_keys)
    }

    async fn get(&self, pk: String, sk: &str) -> ApiResult<Option<Item>> {
        let out = self
            .state
            .db
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// The call `call_id`, with its version.
    pub async fn call(&self, call_id: &str) -> ApiResult<Option<(Call, u64)>> {
        let item = self
            .get(keys::call_pk(self.tenant, call_id), keys::CALL_SK)
            .await?;
        item.map(versioned).transpose()
    }

    /// The transfer `transfer_id`, with its version.
    pub async fn transfer(&self, transfer_id: &str) -> ApiResult<Option<(Transfer, u64)>> {
        let item = self
            .get(
                keys::transfer_pk(self.tenant, transfer_id),
                keys::TRANSFER_SK,
            )
            .await?;
        item.map(versioned).transpose()
    }

    /// The agent `agent_id`.
    pub async fn agent(&self, agent_id: &str) -> ApiResult<Option<Agent>> {
        let item = self
            .get(keys::agents_pk(self.tenant), &keys::agent_sk(agent_id))
            .await?;
        item.map(from_record).transpose()
    }

    /// Creates a call.
    pub fn create_call(&self, call: &Call) -> ApiResult<TransactWriteItem> {
        let mut item = self.call_item(call)?;
        item.insert("version".into(), AttributeValue::N("0".into()));
        create_action(self.table(), item)
    }

    /// Replaces a call read at `version`.
    pub fn replace_call(&self, call: &Call, version: u64) -> ApiResult<TransactWriteItem> {
        let mut item = self.call_item(call)?;
        item.insert(
            "version".into(),
            AttributeValue::N((version + 1).to_string()),
        );
        replace_action(self.table(), item, version)
    }

    /// Creates a transfer.
    pub fn create_transfer(&self, transfer: &Transfer) -> ApiResult<TransactWriteItem> {
        let mut item = self.transfer_item(transfer)?;
        item.insert("version".into(), AttributeValue::N("0".into()));
        create_action(self.table(), item)
    }

    /// Replaces a transfer read at `version`.
    pub fn replace_transfer(
        &self,
        transfer: &Transfer,
        version: u64,
    ) -> ApiResult<TransactWriteItem> {
        let mut item = self.transfer_item(transfer)?;
        item.insert(
            "version".into(),
            AttributeValue::N((version + 1).to_string()),
        );
        replace_action(self.table(), item, version)
    }

    /// Replaces an agent read at `before.version` with `after` (whose version is the next).
    pub fn replace_agent(&self, before: &Agent, after: &Agent) -> ApiResult<TransactWriteItem> {
        replace_action(self.table(), after.item(self.tenant)?, before.version)
    }

    async fn query_all(
        &self,
        index: &str,
        pk_attr: &str,
        pk: String,
        prefix: Option<String>,
    ) -> ApiResult<Vec<Item>> {
        let query = self
            .state
            .db
            .query()
            .table_name(self.table())
            .index_name(index)
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(&pk));
        let query = match &prefix {
            Some(prefix) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", pk_attr.replace("PK", "SK"))
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("#pk = :pk"),
        };
        query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(sdk_error)
    }

    /// The agents of a department in `status` (from the index: re-checked by every claim).
    pub async fn agents_in(
        &self,
        department_id: &str,
        status: Option<AgentStatus>,
    ) -> ApiResult<Vec<Agent>> {
        let items = self
            .query_all(
                keys::GSI1,
                keys::GSI1PK,
                keys::agents_by_department_pk(self.tenant, department_id),
                status.map(|s| format!("{}#", s.as_str())),
            )
            .await?;
        items.into_iter().map(from_record).collect()
    }

    /// A department's queue in service order (urgency, then age).
    pub async fn queue(&self, department_id: &str) -> ApiResult<Vec<Transfer>> {
        let items = self
            .query_all(
                keys::GSI2,
                keys::GSI2PK,
                keys::queue_pk(self.tenant, department_id),
                None,
            )
            .await?;
        items.into_iter().map(from_record).collect()
    }

    /// A queued transfer's 1-based place in its queue: one count of the keys ahead of it.
    pub async fn queue_position(&self, transfer: &Transfer) -> ApiResult<usize> {
        let own = keys::queue_sk(
            transfer.urgency_level.rank(),
            &transfer.requested_at,
            &transfer.transfer_id,
        );
        let ahead = count(
            self.state
                .db
                .query()
                .table_name(self.table())
                .index_name(keys::GSI2)
                .key_condition_expression("GSI2PK = :pk AND GSI2SK < :own")
                .expression_attribute_values(
                    ":pk",
                    s(keys::queue_pk(self.tenant, &transfer.department_id)),
                )
                .expression_attribute_values(":own", s(own)),
        )
        .await?;
        Ok(ahead + 1)
    }

    /// The tenant's `limit` most recent transfers, newest first (one bounded Query).
    pub async fn recent_transfers(&self, limit: i32) -> ApiResult<Vec<Transfer>> {
        let out = self
            .state
            .db
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(keys::transfers_by_time_pk(self.tenant)))
            .scan_index_forward(false)
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

    /// How many transfers wait in a department's queue.
    pub async fn queue_length(&self, department_id: &str) -> ApiResult<usize> {
        count(
            self.state
                .db
                .query()
                .table_name(self.table())
                .index_name(keys::GSI2)
                .key_condition_expression("GSI2PK = :pk")
                .expression_attribute_values(":pk", s(keys::queue_pk(self.tenant, department_id))),
        )
        .await
    }

    /// Transfers by id, in the order given (BatchGetItem; missing ones are skipped).
    pub async fn transfers(&self, ids: &[String]) -> ApiResult<Vec<Transfer>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|id| {
                    [
                        (keys::PK.to_owned(), s(keys::transfer_pk(self.tenant, id))),
                        (keys::SK.to_owned(), s(keys::TRANSFER_SK)),
                    ]
                    .into_iter()
                    .collect()
                })
                .collect();
            let mut attempts = 0;
            while !pending.is_empty() && attempts < 8 {
                attempts += 1;
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(ApiError::internal)?;
                let out = self
                    .state
                    .db
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                if let Some(items) = out.responses.and_then(|mut r| r.remove(self.table())) {
                    for item in items {
                        found.push(from_record::<Transfer>(item)?);
                    }
                }
                if let Some(rest) = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table()))
                {
                    pending = rest.keys;
                }
            }
        }
        found.sort_by_key(|t| ids.iter().position(|id| *id == t.transfer_id));
        Ok(found)
    }

    /// The tenant's transfers requested between `from` and `to` (RFC 3339), oldest first.
    pub async fn transfers_between(&self, from: &str, to: &str) -> ApiResult<Vec<Transfer>> {
        self.between(keys::transfers_by_time_pk(self.tenant), from, to)
            .await
    }

    /// The tenant's calls started between `from` and `to` (RFC 3339), oldest first.
    pub async fn calls_between(&self, from: &str, to: &str) -> ApiResult<Vec<Call>> {
        self.between(keys::calls_by_time_pk(self.tenant), from, to)
            .await
    }

    async fn between<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        from: &str,
        to: &str,
    ) -> ApiResult<Vec<T>> {
        let items = self
            .state
            .db
            .query()
            .table_name(self.table())
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(format!("{to}~")))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(sdk_error)?;
        items.into_iter().map(from_record).collect()
    }

    /// The tenant's calls that have not ended, oldest first.
    pub async fn active_calls(&self) -> ApiResult<Vec<Call>> {
        let items = self
            .query_all(
                keys::GSI2,
                keys::GSI2PK,
                keys::active_calls_pk(self.tenant),
                None,
            )
            .await?;
        items.into_iter().map(from_record).collect()
    }
}

/// How many items `query` matches, over every page (`Select=COUNT`).
async fn count(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> ApiResult<usize> {
    let mut pages = query.select(Select::Count).into_paginator().send();
    let mut total = 0usize;
    while let Some(page) = pages.next().await {
        total += usize::try_from(page.map_err(sdk_error)?.count).unwrap_or(0);
    }
    Ok(total)
}

/// Reads a record and the `version` attribute of its item.
fn versioned<T: serde::de::DeserializeOwned>(item: Item) -> ApiResult<(T, u64)> {
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((from_record(item)?, version))
}

/// Maps a failed condition to a 409 carrying the record as it is now.
pub fn conflict(
    code: &'static str,
    message: impl Into<String>,
    current: Option<&Item>,
) -> ApiError {
    ApiError::Conflict {
        code,
        message: message.into(),
        current: current.and_then(|item| {
            let mut record = item.clone();
            record.retain(|name, _| {
                !name.starts_with("GSI")
                    && !matches!(name.as_str(), "PK" | "SK" | "entity" | "version")
            });
            serde_dynamo::from_item::<_, serde_json::Value>(record).ok()
        }),
    }
}
