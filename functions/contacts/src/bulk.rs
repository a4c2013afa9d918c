//! Bulk operations over up to [`MAX_BULK_IDS`] contacts, reporting per id what happened.
//! Writes go in transactions of many contacts; a contact that fails its condition (changed
//! or deleted meanwhile) is re-read and retried alone, so the answer is exact per id.

use std::collections::HashMap;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vocelio_shared::dynamo::replace_action;
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, AppState, FieldError, clock};

use crate::contacts;
use crate::input::check_tags;
use crate::lists::{self, Change, Failure};
use crate::model::{Contact, ContactStatus};
use crate::store::{self, CountDelta, commit_retrying, contact_item};

/// The most ids one bulk request may name.
pub const MAX_BULK_IDS: usize = 1000;
/// Contacts rewritten per transaction (one action each, plus counters and the event).
const REWRITES_PER_TRANSACTION: usize = 90;

/// `POST /v1/contacts/bulk`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkBody {
    pub operation: String,
    pub contact_ids: Vec<String>,
    #[serde(default)]
    pub list_id: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub status: Option<String>,
}

/// One id's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    pub id: String,
    /// `ok`, `unchanged` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer of a bulk request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOutcome {
    pub operation: String,
    pub requested: usize,
    pub succeeded: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub results: Vec<ItemResult>,
}

enum Operation {
    Delete,
    Members(String, Change),
    Tag(Vec<String>),
    Untag(Vec<String>),
    SetStatus(ContactStatus),
}

fn parse(body: &BulkBody) -> ApiResult<Operation> {
    let mut errors = Vec::new();
    if body.contact_ids.is_empty() || body.contact_ids.len() > MAX_BULK_IDS {
        errors.push(FieldError::new(
            "contactIds",
            format!("must name 1-{MAX_BULK_IDS} contacts"),
        ));
    }
    let list = || -> Result<String, FieldError> {
        body.list_id
            .clone()
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| FieldError::new("listId", "is required for this operation"))
    };
    let tags = |errors: &mut Vec<FieldError>| -> Vec<String> {
        let tags = check_tags(errors, "tags", body.tags.as_deref().unwrap_or_default());
        if tags.is_empty() && errors.is_empty() {
            errors.push(FieldError::new("tags", "is required for this operation"));
        }
        tags
    };
    let operation = match body.operation.as_str() {
        "delete" => Some(Operation::Delete),
        "addToList" => list()
            .map_err(|e| errors.push(e))
            .ok()
            .map(|l| Operation::Members(l, Change::Add)),
        "removeFromList" => list()
            .map_err(|e| errors.push(e))
            .ok()
            .map(|l| Operation::Members(l, Change::Remove)),
        "tag" => Some(Operation::Tag(tags(&mut errors))),
        "untag" => Some(Operation::Untag(tags(&mut errors))),
        "setStatus" => match body.status.as_deref().and_then(ContactStatus::parse) {
            Some(status) => Some(Operation::SetStatus(status)),
            None => {
                errors.push(FieldError::new(
                    "status",
                    "must be active, inactive or doNotCall",
                ));
                None
            }
        },
        _ => {
            errors.push(FieldError::new(
                "operation",
                "must be delete, addToList, removeFromList, tag, untag or setStatus",
            ));
            None
        }
    };
    match operation {
        Some(op) if errors.is_empty() => Ok(op),
        _ => Err(ApiError::fields(errors)),
    }
}

fn ok(id: &str) -> ItemResult {
    ItemResult {
        id: id.to_owned(),
        status: "ok",
        code: None,
        message: None,
    }
}

fn unchanged(id: &str) -> ItemResult {
    ItemResult {
        id: id.to_owned(),
        status: "unchanged",
        code: None,
        message: None,
    }
}

fn failed(f: Failure) -> ItemResult {
    ItemResult {
        id: f.id,
        status: "failed",
        code: Some(f.code),
        message: Some(f.message),
    }
}

/// Runs a bulk request.
pub async fn run(state: &AppState, tenant: &TenantId, body: &BulkBody) -> ApiResult<BulkOutcome> {
    let operation = parse(body)?;
    let ids = &body.contact_ids;
    let mut results: Vec<ItemResult> = match operation {
        Operation::Delete => delete_all(state, tenant, ids).await?,
        Operation::Members(list_id, change) => {
            let outcome =
                lists::change_members(state, tenant, &list_id, ids, change, false).await?;
            outcome
                .changed
                .iter()
                .map(|id| ok(id))
                .chain(outcome.unchanged.iter().map(|id| unchanged(id)))
                .chain(outcome.failed.into_iter().map(failed))
                .collect()
        }
        Operation::Tag(tags) => {
            rewrite(state, tenant, ids, |c| {
                let before = c.tags.len();
                for tag in &tags {
                    if !c.tags.contains(tag) {
                        c.tags.push(tag.clone());
                    }
                }
                if c.tags.len() > crate::input::MAX_TAGS {
                    return Err(Failure::new(
                        &c.id,
                        "too_many_tags",
                        "a contact may have at most 20 tags",
                    ));
                }
                Ok(c.tags.len() != before)
            })
            .await?
        }
        Operation::Untag(tags) => {
            rewrite(state, tenant, ids, |c| {
                let before = c.tags.len();
                c.tags.retain(|t| !tags.contains(t));
                Ok(c.tags.len() != before)
            })
            .await?
        }
        Operation::SetStatus(status) => {
            rewrite(state, tenant, ids, |c| {
                if c.status == status {
                    return Ok(false);
                }
                c.set_status(status);
                Ok(true)
            })
            .await?
        }
    };
    // Answer in the order of the request; duplicates in the request answer once.
    let order: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .rev()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    results.sort_by_key(|r| order.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
    results.dedup_by(|a, b| a.id == b.id);
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    Ok(BulkOutcome {
        operation: body.operation.clone(),
        requested: ids.len(),
        succeeded: count("ok"),
        unchanged: count("unchanged"),
        failed: count("failed"),
        results,
    })
}

async fn delete_all(
    state: &AppState,
    tenant: &TenantId,
    ids: &[String],
) -> ApiResult<Vec<ItemResult>> {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let results: Vec<ApiResult<ItemResult>> = futures_util::stream::iter(unique)
        .map(|id| async move {
            match contacts::delete(state, tenant, &id).await {
                Ok(_) => Ok(ok(&id)),
                Err(ApiError::NotFound { .. }) => Ok(failed(Failure::new(
                    &id,
                    "not_found",
                    "no contact has this id",
                ))),
                Err(ApiError::Conflict { code, message, .. }) => {
                    Ok(failed(Failure::new(&id, code, message)))
                }
                Err(other) => Err(other),
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Applies `change` to each contact (`Ok(false)`: nothing to do) and stores the changed ones
/// in batched transactions with the counters and one event per batch.
pub async fn rewrite<F>(
    state: &AppState,
    tenant: &TenantId,
    ids: &[String],
    change: F,
) -> ApiResult<Vec<ItemResult>>
where
    F: Fn(&mut Contact) -> Result<bool, Failure>,
{
    let mut results = Vec::new();
    let mut pending: Vec<String> = ids.to_vec();
    pending.sort();
    pending.dedup();
    for _round in 0..5 {
        if pending.is_empty() {
            break;
        }
        let found = store::contacts(state, tenant, &pending).await?;
        for id in &pending {
            if !found.iter().any(|c| &c.id == id) {
                results.push(failed(Failure::new(
                    id,
                    "not_found",
                    "no contact has this id",
                )));
            }
        }
        let mut changed: Vec<(Contact, Contact)> = Vec::new();
        for contact in found {
            let mut updated = contact.clone();
            match change(&mut updated) {
                Ok(true) => {
                    updated.updated_at = clock::rfc3339(clock::now());
                    updated.version += 1;
                    changed.push((contact, updated));
                }
                Ok(false) => results.push(unchanged(&contact.id)),
                Err(f) => results.push(failed(f)),
            }
        }
        let mut retry = Vec::new();
        for chunk in changed.chunks(REWRITES_PER_TRANSACTION) {
            let now = clock::now();
            let mut actions = Vec::with_capacity(chunk.len() + 2);
            let mut delta = CountDelta::default();
            for (old, new) in chunk {
                actions.push(replace_action(
                    state.table(),
                    contact_item(tenant, new)?,
                    old.version,
                )?);
                if old.status != new.status {
                    delta.record(Some(old.status), Some(new.status));
                }
            }
            actions.extend(delta.action(state, tenant)?);
            let ids: Vec<&str> = chunk.iter().map(|(_, c)| c.id.as_str()).collect();
            actions.push(
                DomainEvent::new(
                    types::CONTACT_BULK_UPDATED,
                    &json!({ "contactIds": ids }),
                    now,
                )?
                .put(state, tenant)?,
            );
            match commit_retrying(state, actions).await? {
                None => results.extend(chunk.iter().map(|(_, c)| ok(&c.id))),
                Some(cancellation) => {
                    for (i, (old, _)) in chunk.iter().enumerate() {
                        if cancellation.condition_failed(i) {
                            retry.push(old.id.clone());
                        }
                    }
                    if retry.is_empty() {
                        return Err(ApiError::conflict(
                            "concurrent_update",
                            "the bulk change raced another request; retry",
                        ));
                    }
                    // The rest of this chunk did not commit either: retry them too.
                    for (i, (old, _)) in chunk.iter().enumerate() {
                        if !cancellation.condition_failed(i) {
                            retry.push(old.id.clone());
                        }
                    }
                }
            }
        }
        pending = retry;
    }
    for id in pending {
        results.push(failed(Failure::new(
            &id,
            "concurrent_update",
            "the contact kept changing during the bulk change; retry",
        )));
    }
    Ok(results)
}
