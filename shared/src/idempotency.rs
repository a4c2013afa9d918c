//! `Idempotency-Key` support: a retried request returns the first result.
//!
//! The record (request fingerprint + response) is written in the same transaction as the
//! work it guards, so a key is either bound to finished work or to nothing.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::clock;
use crate::dynamo::{Item, n, s, sdk_error};
use crate::error::{ApiError, ApiResult};
use crate::ids::TenantId;
use crate::keys;
use crate::state::AppState;

/// The key of one request to one operation, with the fingerprint of its body.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pk: String,
    fingerprint: String,
}

/// A response remembered for a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Its status code.
    pub status: u16,
    /// Its JSON body.
    pub body: Value,
}

impl IntoResponse for Replay {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = (status, Json(self.body)).into_response();
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
        response
    }
}

impl Idempotent {
    /// The guard for `key` on `operation` in `tenant`, fingerprinting the parsed `request`.
    pub fn new(
        tenant: &TenantId,
        operation: &str,
        key: &str,
        request: &impl serde::Serialize,
    ) -> ApiResult<Self> {
        let canonical = serde_json::to_vec(request).map_err(ApiError::internal)?;
        Ok(Self {
            pk: keys::idempotency_pk(tenant, operation, key),
            fingerprint: fingerprint(&canonical),
        })
    }

    /// The remembered response, if this key was used before: 422 if it was used with a
    /// different request.
    pub async fn replay(&self, state: &AppState) -> ApiResult<Option<Replay>> {
        let found = state
            .db
            .get_item()
            .table_name(state.table())
            .key(keys::PK, s(&self.pk))
            .key(keys::SK, s(keys::IDEMPOTENCY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = found.item else {
            return Ok(None);
        };
        let stored = item.get("fingerprint").and_then(|v| v.as_s().ok());
        if stored != Some(&self.fingerprint) {
            return Err(ApiError::Validation {
                message: "this Idempotency-Key was already used with a different request".into(),
                details: vec![crate::error::FieldError::new(
                    "Idempotency-Key",
                    "was already used with a different request",
                )],
            });
        }
        let status = item
            .get("status")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let body = item
            .get("response")
            .and_then(|v| v.as_s().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or(Value::Null);
        Ok(Some(Replay { status, body }))
    }

    /// The transaction action that binds this key to `status` + `body`; it fails its
    /// condition when the key is already bound (a concurrent retry won).
    pub fn record(
        &self,
        state: &AppState,
        status: StatusCode,
        body: &Value,
    ) -> ApiResult<TransactWriteItem> {
        let now = clock::now();
        let item: Item = [
            (keys::PK.to_owned(), s(&self.pk)),
            (keys::SK.to_owned(), s(keys::IDEMPOTENCY_SK)),
            (keys::ENTITY.to_owned(), s("idempotency")),
            ("fingerprint".to_owned(), s(&self.fingerprint)),
            ("status".to_owned(), n(status.as_u16())),
            ("response".to_owned(), s(body.to_string())),
            ("created_at".to_owned(), s(clock::rfc3339(now))),
            (
                keys::EXPIRES_AT.to_owned(),
                n(clock::epoch_after_hours(
                    now,
                    state.config.idempotency_ttl_hours,
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

/// The guard for an optional `Idempotency-Key` header on `operation`.
pub fn guard(
    tenant: &TenantId,
    operation: &str,
    key: Option<&str>,
    request: &impl serde::Serialize,
) -> ApiResult<Option<Idempotent>> {
    key.map(|k| Idempotent::new(tenant, operation, k, request))
        .transpose()
}

/// The remembered response for an optional guard (none without a key).
pub async fn replay_of(guard: Option<&Idempotent>, state: &AppState) -> ApiResult<Option<Replay>> {
    match guard {
        Some(guard) => guard.replay(state).await,
        None => Ok(None),
    }
}

/// Runs the write of a guarded creation and answers `status` + `body`. When the write fails
/// and the key was meanwhile bound by a concurrent retry, that retry's result is the answer.
pub async fn finish_create<F>(
    state: &AppState,
    guard: Option<&Idempotent>,
    status: StatusCode,
    body: Value,
    write: F,
) -> ApiResult<Response>
where
    F: std::future::Future<Output = ApiResult<()>>,
{
    if let Err(err) = write.await {
        return match replay_of(guard, state).await? {
            Some(replay) => Ok(replay.into_response()),
            None => Err(err),
        };
    }
    Ok((status, Json(body)).into_response())
}

/// SHA-256 of the canonical request, hex.
fn fingerprint(canonical: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(canonical);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
