//! The local stand-in for Lambda's DynamoDB Streams event source mapping: follows the core
//! table's stream on DynamoDB Local (DescribeStream, GetShardIterator, GetRecords over the
//! DynamoDB Streams JSON protocol), applies the template's filter (new event-log items
//! only) and invokes the realtime function's Lambda entry point with the batch, records
//! exactly as GetRecords returns them plus `eventSourceARN`, as Lambda does; the telephony
//! consumer gets the same batches (its own mapping on AWS).

use std::collections::HashMap;
use std::time::Duration;

use realtime::Realtime;
use serde_json::{Value, json};

/// Records per invocation (the template's `BatchSize`).
pub const BATCH_SIZE: u32 = 100;
/// How long an idle poll waits before the next one.
pub const IDLE_POLL: Duration = Duration::from_millis(25);

/// A DynamoDB Streams client over plain JSON (the records pass through untouched).
#[derive(Debug, Clone)]
struct StreamsApi {
    http: reqwest::Client,
    url: String,
}

impl StreamsApi {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, String> {
        let date = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDBStreams_20120810.{operation}"))
            // DynamoDB Local reads the access key and region from the header; it checks no
            // signature.
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=local/{stamp}/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{operation}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{operation}: {e}"))
    }

    async fn shards(&self, stream_arn: &str) -> Result<Vec<Value>, String> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut request = json!({"StreamArn": stream_arn});
            if let Some(start) = &start {
                request["ExclusiveStartShardId"] = json!(start);
            }
            let out = self.call("DescribeStream", request).await?;
            let description = &out["StreamDescription"];
            shards.extend(
                description["Shards"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match description["LastEvaluatedShardId"].as_str() {
                Some(last) => start = Some(last.to_owned()),
                None => return Ok(shards),
            }
        }
    }

    async fn iterator(&self, stream_arn: &str, shard: &str, kind: &str) -> Result<String, String> {
        let out = self
            .call(
                "GetShardIterator",
                json!({"StreamArn": stream_arn, "ShardId": shard, "ShardIteratorType": kind}),
            )
            .await?;
        out["ShardIterator"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "GetShardIterator returned no iterator".into())
    }
}

/// Whether a record passes the event source mapping's filter
/// (`eventName` INSERT and `dynamodb.NewImage.entity.S` = `event`).
pub fn passes_filter(record: &Value) -> bool {
    record["eventName"] == "INSERT"
        && record.pointer("/dynamodb/NewImage/entity/S") == Some(&json!("event"))
}

/// Follows the stream of `table` at `dynamodb_url` and invokes `realtime` with each batch
/// until the task is aborted. Shards open when it starts are read from their latest
/// record; shards that appear later from their start.
pub async fn follow(
    realtime: Realtime,
    telephony: Option<telephony::Telephony>,
    dynamodb_url: String,
    table: String,
) {
    let api = StreamsApi {
        http: reqwest::Client::new(),
        url: dynamodb_url,
    };
    let stream_arn = loop {
        match realtime
            .app
            .db
            .describe_table()
            .table_name(&table)
            .send()
            .await
        {
            Ok(out) => {
                if let Some(arn) = out.table.and_then(|t| t.latest_stream_arn) {
                    break arn;
                }
                tracing::error!(%table, "the table has no stream; fan-out is off");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(err), "describe table");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    // shard id -> next iterator (None: finished).
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut first_scan = true;
    let mut last_scan = std::time::Instant::now() - Duration::from_secs(10);
    loop {
        if last_scan.elapsed() >= Duration::from_millis(500) {
            last_scan = std::time::Instant::now();
            match api.shards(&stream_arn).await {
                Ok(shards) => {
                    for shard in shards {
                        let Some(id) = shard["ShardId"].as_str() else {
                            continue;
                        };
                        if iterators.contains_key(id) {
                            continue;
                        }
                        let closed = shard
                            .pointer("/SequenceNumberRange/EndingSequenceNumber")
                            .is_some();
                        let kind = match (first_scan, closed) {
                            (true, true) => {
                                iterators.insert(id.to_owned(), None);
                                continue;
                            }
                            (true, false) => "LATEST",
                            (false, _) => "TRIM_HORIZON",
                        };
                        match api.iterator(&stream_arn, id, kind).await {
                            Ok(it) => {
                                iterators.insert(id.to_owned(), Some(it));
                            }
                            Err(e) => tracing::warn!(error = %e, "shard iterator"),
                        }
                    }
                    first_scan = false;
                }
                Err(e) => tracing::warn!(error = %e, "describe stream"),
            }
        }
        let mut any = false;
        let open: Vec<(String, String)> = iterators
            .iter()
            .filter_map(|(id, it)| Some((id.clone(), it.clone()?)))
            .collect();
        for (shard, iterator) in open {
            let out = match api
                .call(
                    "GetRecords",
                    json!({"ShardIterator": iterator, "Limit": BATCH_SIZE}),
                )
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    tracing::warn!(error = %e, %shard, "get records");
                    // Expired iterator: start the shard again from its start.
                    iterators.remove(&shard);
                    continue;
                }
            };
            iterators.insert(
                shard.clone(),
                out["NextShardIterator"].as_str().map(str::to_owned),
            );
            let records: Vec<Value> = out["Records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(passes_filter)
                .map(|mut r| {
                    r["eventSourceARN"] = json!(stream_arn);
                    r
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            any = true;
            let batch = json!({ "Records": records });
            if let Some(telephony) = &telephony {
                invoke_telephony(telephony, &batch).await;
            }
            invoke(&realtime, batch).await;
        }
        if !any {
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
}

/// One invocation with Lambda's retry policy (the template's `MaximumRetryAttempts`: 2).
async fn invoke(realtime: &Realtime, batch: Value) {
    for attempt in 0..3 {
        match realtime::fanout::dispatch(realtime, batch.clone()).await {
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(error = %err, attempt, "fan-out batch failed");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    tracing::error!("fan-out batch dropped after 3 attempts");
}

/// One invocation of the telephony consumer, with the same retry policy.
async fn invoke_telephony(telephony: &telephony::Telephony, batch: &Value) {
    for attempt in 0..3 {
        match telephony::events::handle_batch(telephony, batch).await {
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(error = %err, attempt, "telephony batch failed");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    tracing::error!("telephony batch dropped after 3 attempts");
}
