//! API keys for services (the voice agent, integrations): `voc_live_…` secrets, stored only
//! as their SHA-256 (they carry ≥ 190 bits of entropy, so a fast hash is safe), each with
//! scopes and a per-minute rate limit. The accounts function creates and revokes them;
//! every function resolves them here, with a few seconds of per-instance cache so a
//! revoked key fails within seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::Scope;
use crate::auth::{AuthUser, Role};
use crate::dynamo::{n, s};
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::keys::{EXPIRES_AT, PK, SK};
use crate::state::AppState;

/// The prefix of production keys.
pub const LIVE_PREFIX: &str = "voc_live_";
/// The prefix of test keys (same powers; for integrators' test setups).
pub const TEST_PREFIX: &str = "voc_test_";
/// How long a resolved key is trusted before it is read again.
pub const CACHE_SECONDS: u64 = 5;
/// The sort key of a key's lookup item.
pub const LOOKUP_SK: &str = "APIKEY";

/// Whether a bearer credential is an API key rather than a token.
pub fn looks_like_api_key(credential: &str) -> bool {
    credential.starts_with(LIVE_PREFIX) || credential.starts_with(TEST_PREFIX)
}

/// The stored digest of a key.
pub fn digest(key: &str) -> String {
    let hash = Sha256::digest(key.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The partition of a key's lookup item, by its digest.
pub fn lookup_pk(digest: &str) -> String {
    format!("APIKEY#{digest}")
}

/// The partition of a tenant's keys as listed in settings.
pub fn tenant_keys_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#APIKEYS")
}

/// The sort key of a key in [`tenant_keys_pk`].
pub fn tenant_key_sk(key_id: &str) -> String {
    format!("KEY#{key_id}")
}

/// The partition of a key's per-minute request counters.
pub fn usage_pk(key_id: &str) -> String {
    format!("APIKEY#{key_id}#USAGE")
}

/// What a key's lookup item grants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// The key's tenant.
    pub tenant_id: String,
    /// The key's id (`key_…`).
    pub key_id: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Requests allowed per minute.
    pub requests_per_minute: u32,
    /// When the key stops working (RFC 3339), if ever.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A resolved key: its grant, and whether its organisation allows API access now.
type Resolved = Option<(Grant, bool)>;

/// Resolved keys, per instance, for [`CACHE_SECONDS`].
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Resolved, Instant)>>,
}

impl KeyCache {
    fn get(&self, digest: &str) -> Option<Resolved> {
        let entries = self.entries.lock().ok()?;
        let (grant, at) = entries.get(digest)?;
        (at.elapsed() < Duration::from_secs(CACHE_SECONDS)).then(|| grant.clone())
    }

    fn put(&self, digest: String, grant: Resolved) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(CACHE_SECONDS));
            }
            entries.insert(digest, (grant, Instant::now()));
        }
    }
}

/// The caller a key names, after its rate limit: 401 when unknown, revoked or expired;
/// 429 with `Retry-After` past its per-minute limit.
pub async fn authenticate_key(state: &AppState, key: &str) -> Result<AuthUser, ApiError> {
    if key.len() > 128 {
        return Err(ApiError::Unauthorized("the API key is not valid".into()));
    }
    let digest = digest(key);
    let grant = match state.api_keys.get(&digest) {
        Some(grant) => grant,
        None => {
            let item = state
                .db
                .get_item()
                .table_name(state.table())
                .key(PK, s(lookup_pk(&digest)))
                .key(SK, s(LOOKUP_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(crate::dynamo::sdk_error)?
                .item;
            let grant = match item {
                Some(item) => {
                    let grant = crate::dynamo::from_record::<Grant>(item)?;
                    let enabled = api_access_enabled(state, &grant.tenant_id).await?;
                    Some((grant, enabled))
                }
                None => None,
            };
            state.api_keys.put(digest, grant.clone());
            grant
        }
    };
    let (grant, enabled) =
        grant.ok_or_else(|| ApiError::Unauthorized("the API key is not valid".into()))?;
    if !enabled {
        return Err(ApiError::Refused {
            code: "api_access_disabled",
            message: "API access is turned off in this organisation's settings".into(),
        });
    }
    let now = time::OffsetDateTime::now_utc();
    if let Some(expires) = grant.expires_at.as_deref()
        && time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|at| at <= now)
    {
        return Err(ApiError::Unauthorized("the API key has expired".into()));
    }
    let tenant = TenantId::parse(&grant.tenant_id).map_err(ApiError::internal)?;
    count_request(state, &tenant, &grant, now).await?;
    Ok(AuthUser {
        user_id: grant.key_id,
        tenant,
        role: Role::Supervisor,
        scopes: Some(grant.scopes.into()),
    })
}

/// Counts one request in the key's current minute (refused past its limit) and records
/// when and how much it was used, both at once.
async fn count_request(
    state: &AppState,
    tenant: &TenantId,
    grant: &Grant,
    now: time::OffsetDateTime,
) -> Result<(), ApiError> {
    let minute = now.unix_timestamp() / 60;
    let counted = state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(usage_pk(&grant.key_id)))
        .key(SK, s(format!("MINUTE#{minute}")))
        .update_expression("ADD requests :one SET #exp = :exp")
        .condition_expression("attribute_not_exists(requests) OR requests < :limit")
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":limit", n(grant.requests_per_minute))
        .expression_attribute_values(":exp", n((minute + 2) * 60))
        .return_values(ReturnValue::None)
        .send();
    let day = crate::clock::date_of(now);
    let usage = state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(tenant_keys_pk(tenant)))
        .key(SK, s(tenant_key_sk(&grant.key_id)))
        .update_expression("SET last_used_at = :now ADD #day :one")
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#day", format!("requests_{day}"))
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":now", s(crate::clock::rfc3339(now)))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send();
    let (counted, usage) = tokio::join!(counted, usage);
    if let Err(err) = usage {
        tracing::debug!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "api key usage not recorded");
    }
    match counted {
        Ok(_) => Ok(()),
        Err(err) if crate::dynamo::is_condition_failure(&err) => {
            let retry = 60 - (now.unix_timestamp() % 60);
            Err(ApiError::Limited {
                code: "api_key_rate_limited",
                message: format!(
                    "this API key is limited to {} requests per minute",
                    grant.requests_per_minute
                ),
                retry_after_seconds: Some(retry.max(1) as u64),
            })
        }
        Err(err) => Err(crate::dynamo::sdk_error(err)),
    }
}

/// Whether the organisation's settings allow API keys (`settings.api_access_enabled` of its
/// `ORG#<tenant>` item; a tenant without one, such as a local dev tenant, allows them).
async fn api_access_enabled(state: &AppState, tenant: &str) -> Result<bool, ApiError> {
    let item = state
        .db
        .get_item()
        .table_name(state.table())
        .key(PK, s(format!("ORG#{tenant}")))
        .key(SK, s("ORG"))
        .projection_expression("settings.api_access_enabled")
        .send()
        .await
        .map_err(crate::dynamo::sdk_error)?
        .item;
    let flag = item
        .as_ref()
        .and_then(|i| i.get("settings"))
        .and_then(|v| v.as_m().ok())
        .and_then(|m| m.get("api_access_enabled"))
        .and_then(|v| v.as_bool().ok())
        .copied();
    Ok(flag.unwrap_or(true))
}
