//! Usage counters per tenant: per call, per customer and per month, so a call's AI voice
//! cost can be totalled. One transaction adds to all of them, so they never disagree.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use serde::Serialize;
use vocelio_shared::AppState;
use vocelio_shared::dynamo::{Item, n, s, sdk_error};
use vocelio_shared::error::ApiResult;
use vocelio_shared::ids::TenantId;
use vocelio_shared::keys::{PK, SK};

/// The partition of a tenant's TTS usage counters.
pub fn usage_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#TTSUSAGE")
}

/// One synthesis request as it is counted.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEntry {
    /// Characters of text in the request.
    pub characters: usize,
    /// Seconds of audio delivered.
    pub audio_seconds: f64,
    /// What the provider charged (0 on a cache hit).
    pub cost: f64,
    /// Served from the cache.
    pub cached: bool,
    pub provider: &'static str,
}

/// The totals of one counter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    pub requests: u64,
    pub cache_hits: u64,
    /// Characters sent to providers (cache misses only): what was billed.
    pub billed_characters: u64,
    /// Characters spoken, hits included.
    pub characters: u64,
    pub audio_seconds: f64,
    pub cost: f64,
}

/// The sort key of a counter: `CALL#id`, `CUSTOMER#id` or `MONTH#yyyy-mm`.
pub fn counter_sk(scope: &str, id: &str) -> String {
    format!("{}#{id}", scope.to_ascii_uppercase())
}

fn add(table: &str, pk: &str, sk: &str, entry: &UsageEntry) -> ApiResult<TransactWriteItem> {
    let billed = if entry.cached { 0 } else { entry.characters };
    let update = Update::builder()
        .table_name(table)
        .key(PK, s(pk))
        .key(SK, s(sk))
        .update_expression(
            "ADD requests :one, cache_hits :hit, characters :chars, billed_characters :billed, \
             audio_seconds :secs, cost :cost SET entity = :entity, updated_at = :now",
        )
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":hit", n(u8::from(entry.cached)))
        .expression_attribute_values(":chars", n(entry.characters))
        .expression_attribute_values(":billed", n(billed))
        .expression_attribute_values(":secs", n(format!("{:.3}", entry.audio_seconds)))
        .expression_attribute_values(":cost", n(format!("{:.6}", entry.cost)))
        .expression_attribute_values(":entity", s("tts_usage"))
        .expression_attribute_values(
            ":now",
            s(vocelio_shared::clock::rfc3339(vocelio_shared::clock::now())),
        )
        .build()
        .map_err(vocelio_shared::ApiError::internal)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Adds `entry` to the tenant's month and, when given, to the call's and customer's totals.
pub async fn record(
    state: &AppState,
    tenant: &TenantId,
    call_id: Option<&str>,
    customer_id: Option<&str>,
    entry: &UsageEntry,
) -> ApiResult<()> {
    let pk = usage_pk(tenant);
    let month = vocelio_shared::clock::rfc3339(vocelio_shared::clock::now())
        .get(..7)
        .unwrap_or("unknown")
        .to_owned();
    let mut items = vec![add(
        state.table(),
        &pk,
        &counter_sk("month", &month),
        entry,
    )?];
    if let Some(call) = call_id {
        items.push(add(state.table(), &pk, &counter_sk("call", call), entry)?);
    }
    if let Some(customer) = customer_id {
        items.push(add(
            state.table(),
            &pk,
            &counter_sk("customer", customer),
            entry,
        )?);
    }
    state
        .db
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

/// The totals of one counter (zeros when nothing was counted).
pub async fn totals(state: &AppState, tenant: &TenantId, sk: &str) -> ApiResult<UsageTotals> {
    let item = state
        .db
        .get_item()
        .table_name(state.table())
        .key(PK, s(usage_pk(tenant)))
        .key(SK, s(sk))
        .send()
        .await
        .map_err(sdk_error)?
        .item;
    Ok(item.map(|item| totals_of(&item)).unwrap_or_default())
}

fn totals_of(item: &Item) -> UsageTotals {
    let num = |name: &str| -> f64 {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    UsageTotals {
        requests: num("requests") as u64,
        cache_hits: num("cache_hits") as u64,
        billed_characters: num("billed_characters") as u64,
        characters: num("characters") as u64,
        audio_seconds: (num("audio_seconds") * 1000.0).round() / 1000.0,
        cost: (num("cost") * 1_000_000.0).round() / 1_000_000.0,
    }
}
