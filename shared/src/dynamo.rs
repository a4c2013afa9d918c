//! DynamoDB helpers: error mapping, transaction cancellation reasons, opaque cursors.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ApiResult};
use crate::keys;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Maps an SDK failure: throttling, timeouts and unreachable endpoints are 503 (retry),
/// a transaction conflict is 409 (retry), anything else is a logged 500.
pub fn sdk_error<E, R>(err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            ApiError::Unavailable(format!("dynamodb unreachable: {err:?}"))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            match code {
                "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable" => ApiError::Unavailable(format!("dynamodb: {code}")),
                "TransactionConflictException" => ApiError::conflict(
                    "concurrent_update",
                    "the record is being changed by another request; retry",
                ),
                _ => ApiError::internal(format!(
                    "dynamodb {code}: {}",
                    service.err().message().unwrap_or_default()
                )),
            }
        }
        _ => ApiError::internal(format!("dynamodb: {err:?}")),
    }
}

/// Whether a single-item write failed its condition (`ConditionalCheckFailedException`):
/// usually an answer ("already used", "locked"), not an error.
pub fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// Why a transaction was cancelled, one entry per action in order (`None` for "no reason"),
/// with the item as it was when `ReturnValuesOnConditionCheckFailure::AllOld` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancellation {
    /// The reason code per action (`ConditionalCheckFailed`, `TransactionConflict`, ...).
    pub reasons: Vec<Option<String>>,
    /// The old item per action, where returned.
    pub items: Vec<Option<Item>>,
}

impl Cancellation {
    /// Whether the action at `index` failed its condition.
    pub fn condition_failed(&self, index: usize) -> bool {
        self.reasons.get(index).and_then(Option::as_deref) == Some("ConditionalCheckFailed")
    }

    /// The old item of the action at `index`, if DynamoDB returned it.
    pub fn item(&self, index: usize) -> Option<&Item> {
        self.items.get(index).and_then(Option::as_ref)
    }
}

/// Splits a failed `TransactWriteItems`: `Ok(cancellation)` when it was cancelled (the caller
/// decides which condition means what), `Err(api_error)` for every other failure.
pub fn transaction_cancellation<R: std::fmt::Debug>(
    err: SdkError<TransactWriteItemsError, R>,
) -> Result<Cancellation, ApiError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    {
        let reasons = cancelled.cancellation_reasons();
        let cancellation = Cancellation {
            reasons: reasons
                .iter()
                .map(|r| r.code().map(str::to_owned))
                .collect(),
            items: reasons.iter().map(|r| r.item().cloned()).collect(),
        };
        if cancellation.reasons.iter().any(|r| {
            matches!(
                r.as_deref(),
                Some("TransactionConflict" | "ThrottlingError")
            )
        }) {
            return Err(ApiError::conflict(
                "concurrent_update",
                "the record is being changed by another request; retry",
            ));
        }
        return Ok(cancellation);
    }
    Err(sdk_error(err))
}

/// Key attributes a cursor may carry.
const CURSOR_ATTRIBUTES: [&str; 6] = [
    keys::PK,
    keys::SK,
    keys::GSI1PK,
    keys::GSI1SK,
    keys::GSI2PK,
    keys::GSI2SK,
];

/// Encodes a `LastEvaluatedKey` as an opaque, URL-safe cursor.
pub fn encode_cursor(last_key: &Item) -> String {
    let map: serde_json::Map<String, serde_json::Value> = last_key
        .iter()
        .filter_map(|(k, v)| {
            v.as_s()
                .ok()
                .map(|s| (k.clone(), serde_json::Value::from(s.as_str())))
        })
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::Value::Object(map).to_string())
}

/// Decodes a cursor made by [`encode_cursor`] into an `ExclusiveStartKey`, refusing any whose
/// `pinned` attributes differ from the query's (a cursor cannot move into another partition,
/// so never into another tenant).
pub fn decode_cursor(cursor: &str, pinned: &[(&str, &str)]) -> ApiResult<Item> {
    let bad =
        || ApiError::bad_request("invalid_cursor", "the cursor is not one this list returned");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    let map: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if map.is_empty() || map.keys().any(|k| !CURSOR_ATTRIBUTES.contains(&k.as_str())) {
        return Err(bad());
    }
    for (attr, expected) in pinned {
        if map.get(*attr).map(String::as_str) != Some(*expected) {
            return Err(bad());
        }
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

/// Checks a requested page size: `default` when absent, 1..=`max` otherwise.
pub fn page_limit(requested: Option<u32>, default: u32, max: u32) -> ApiResult<i32> {
    let limit = requested.unwrap_or(default);
    if limit == 0 || limit > max {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    i32::try_from(limit)
        .map_err(|_| ApiError::field("limit", format!("must be between 1 and {max}")))
}

/// Serialises a record into an item and adds its key attributes.
pub fn record_item<T: serde::Serialize>(record: &T, keys: Vec<(&str, String)>) -> ApiResult<Item> {
    let mut item: Item = serde_dynamo::to_item(record).map_err(ApiError::internal)?;
    for (name, value) in keys {
        item.insert(name.to_owned(), AttributeValue::S(value));
    }
    Ok(item)
}

/// Reads a record from an item (key attributes are ignored).
pub fn from_record<T: serde::de::DeserializeOwned>(item: Item) -> ApiResult<T> {
    serde_dynamo::from_item(item).map_err(ApiError::internal)
}

/// The transaction action that creates `item`, failing its condition if the key exists.
pub fn create_action(
    table: &str,
    item: Item,
) -> ApiResult<aws_sdk_dynamodb::types::TransactWriteItem> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(ApiError::internal)?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .put(put)
        .build())
}

/// The transaction action that replaces a record read at `version` with `item` (which carries
/// the next version), failing its condition if anyone wrote it meanwhile (optimistic lock).
pub fn replace_action(
    table: &str,
    item: Item,
    version: u64,
) -> ApiResult<aws_sdk_dynamodb::types::TransactWriteItem> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("version = :seen")
        .expression_attribute_values(":seen", n(version))
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()
        .map_err(ApiError::internal)?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .put(put)
        .build())
}

/// The transaction action that deletes the item at `pk`/`sk`; with `version`, only if it
/// is still the one read at that version.
pub fn delete_action(
    table: &str,
    pk: String,
    sk: &str,
    version: Option<u64>,
) -> ApiResult<aws_sdk_dynamodb::types::TransactWriteItem> {
    let mut delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .key(keys::PK, AttributeValue::S(pk))
        .key(keys::SK, AttributeValue::S(sk.to_owned()));
    if let Some(version) = version {
        delete = delete
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(version));
    }
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .delete(delete.build().map_err(ApiError::internal)?)
        .build())
}

/// Every item a query matches, page after page (for partitions known to stay small).
pub async fn query_all(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> ApiResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = query
            .clone()
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// The transaction action that adds `counters` to the numbers of the item at `pk`/`sk`
/// (created on first use).
pub fn add_action(
    table: &str,
    pk: String,
    sk: String,
    counters: &[(&str, f64)],
) -> ApiResult<aws_sdk_dynamodb::types::TransactWriteItem> {
    let mut update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key(keys::PK, AttributeValue::S(pk))
        .key(keys::SK, AttributeValue::S(sk));
    let mut parts = Vec::with_capacity(counters.len());
    for (i, (name, value)) in counters.iter().enumerate() {
        parts.push(format!("#c{i} :c{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), *name)
            .expression_attribute_values(format!(":c{i}"), n(value));
    }
    let update = update
        .update_expression(format!("ADD {}", parts.join(", ")))
        .build()
        .map_err(ApiError::internal)?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
        .update(update)
        .build())
}

/// Runs a transaction: `Ok(None)` when it committed, `Ok(Some(cancellation))` when a
/// condition failed (the caller decides what that means), `Err` for everything else.
///
/// A cancellation for a transient reason (`TransactionConflict` with another transaction on
/// the same item, `ThrottlingError`) changed nothing, so the same actions are sent again,
/// up to [`COMMIT_ATTEMPTS`] times with jittered, growing pauses; only when that never
/// succeeds is it an error, a 503 the caller may retry — never a 409, which means the
/// state forbids the change.
pub async fn commit(
    db: &aws_sdk_dynamodb::Client,
    actions: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> ApiResult<Option<Cancellation>> {
    for attempt in 0..COMMIT_ATTEMPTS {
        let sent = db
            .transact_write_items()
            .set_transact_items(Some(actions.clone()))
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(None),
            Err(err) => match transaction_cancellation(err) {
                Ok(cancellation) => return Ok(Some(cancellation)),
                Err(ApiError::Conflict {
                    code: "concurrent_update",
                    ..
                }) => {
                    tracing::debug!(attempt, "transaction conflict or throttling; retried");
                    tokio::time::sleep(commit_backoff(attempt)).await;
                }
                Err(other) => return Err(other),
            },
        }
    }
    Err(ApiError::Unavailable(
        "a transaction kept conflicting with concurrent ones".into(),
    ))
}

/// Attempts of one transaction cancelled for transient reasons.
pub const COMMIT_ATTEMPTS: u32 = 8;

/// The pause before attempt `attempt + 1`: 5 ms doubling up to 160 ms, each scaled by a
/// random 50–100 % so that racing writers spread out.
pub fn commit_backoff(attempt: u32) -> std::time::Duration {
    let ceiling = 5u64 << attempt.min(5);
    let random = u64::from(uuid::Uuid::now_v7().as_bytes()[15]);
    std::time::Duration::from_micros(ceiling * 1000 * (128 + random / 2) / 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_stay_in_their_partition() {
        let key: Item = [
            ("PK".to_owned(), s("TENANT#a#DEPT")),
            ("SK".to_owned(), s("DEPT#dept_1")),
        ]
        .into_iter()
        .collect();
        let cursor = encode_cursor(&key);
        assert_eq!(
            decode_cursor(&cursor, &[("PK", "TENANT#a#DEPT")]).unwrap(),
            key
        );
        assert!(decode_cursor(&cursor, &[("PK", "TENANT#b#DEPT")]).is_err());
        assert!(decode_cursor("not-base64!", &[]).is_err());
        let foreign = URL_SAFE_NO_PAD.encode(r#"{"secret":"x"}"#);
        assert!(decode_cursor(&foreign, &[]).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(page_limit(None, 50, 100).unwrap(), 50);
        assert!(page_limit(Some(0), 50, 100).is_err());
        assert!(page_limit(Some(101), 50, 100).is_err());
    }
}
