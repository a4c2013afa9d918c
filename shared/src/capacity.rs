//! DynamoDB capacity accounting per request: the basis of the cost model.
//!
//! An SDK interceptor asks every DynamoDB data-plane call for `ReturnConsumedCapacity=TOTAL`
//! (before signing, so the signature covers it) and adds the units each answer reports to the
//! meter of the request being served. [`meter`] runs a request inside a fresh meter; the HTTP
//! layer reports the total as the `x-dynamodb-capacity-units` response header and in the log.

use std::cell::Cell;

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

tokio::task_local! {
    static CONSUMED: Cell<f64>;
}

/// Operations that accept `ReturnConsumedCapacity`.
const METERED: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

/// Runs `work` with a fresh meter; returns its output and the capacity units it consumed.
pub async fn meter<F: Future>(work: F) -> (F::Output, f64) {
    CONSUMED
        .scope(Cell::new(0.0), async move {
            let out = work.await;
            (out, CONSUMED.with(Cell::get))
        })
        .await
}

fn record(units: f64) {
    let _ = CONSUMED.try_with(|c| c.set(c.get() + units));
}

/// Sums the `CapacityUnits` of a `ConsumedCapacity` value (one object, or a list of them).
pub fn units_in(body: &serde_json::Value) -> f64 {
    match body.get("ConsumedCapacity") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|c| c["CapacityUnits"].as_f64())
            .sum(),
        Some(one) => one["CapacityUnits"].as_f64().unwrap_or(0.0),
        None => 0.0,
    }
}

/// The interceptor; register it on the DynamoDB client's config.
#[derive(Debug, Default, Clone, Copy)]
pub struct CapacityMeter;

fn operation(target: Option<&str>) -> Option<&str> {
    let op = target?.strip_prefix("DynamoDB_20120810.")?;
    METERED.contains(&op).then_some(op)
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if operation(request.headers().get("x-amz-target")).is_none() {
            return Ok(());
        }
        let Some(bytes) = request.body().bytes() else {
            return Ok(());
        };
        let Ok(serde_json::Value::Object(mut body)) =
            serde_json::from_slice::<serde_json::Value>(bytes)
        else {
            return Ok(());
        };
        if body.contains_key("ReturnConsumedCapacity") {
            return Ok(());
        }
        body.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
        let encoded = serde_json::to_vec(&serde_json::Value::Object(body))?;
        request
            .headers_mut()
            .insert("content-length", encoded.len().to_string());
        *request.body_mut() = aws_smithy_types::body::SdkBody::from(encoded);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes()
            && let Ok(body) = serde_json::from_slice::<serde_json::Value>(bytes)
        {
            record(units_in(&body));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_summed_from_single_and_list_answers() {
        assert_eq!(
            units_in(&serde_json::json!({"ConsumedCapacity": {"CapacityUnits": 1.5}})),
            1.5
        );
        assert_eq!(
            units_in(
                &serde_json::json!({"ConsumedCapacity": [{"CapacityUnits": 2.0}, {"CapacityUnits": 0.5}]})
            ),
            2.5
        );
        assert_eq!(units_in(&serde_json::json!({"Item": {}})), 0.0);
        assert_eq!(operation(Some("DynamoDB_20120810.Query")), Some("Query"));
        assert_eq!(operation(Some("DynamoDB_20120810.DescribeTable")), None);
    }

    #[tokio::test]
    async fn the_meter_counts_only_inside_its_scope() {
        record(9.0);
        let ((), units) = meter(async {
            record(1.0);
            record(0.5);
        })
        .await;
        assert_eq!(units, 1.5);
    }
}
