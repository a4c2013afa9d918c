//! API keys for services: made and revoked by admins, shown whole once, stored by digest
//! (see `vocelio_shared::apikeys` for how every function resolves them).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vocelio_shared::access::Scope;
use vocelio_shared::apikeys::{
    Grant, LIVE_PREFIX, LOOKUP_SK, digest, lookup_pk, tenant_key_sk, tenant_keys_pk,
};
use vocelio_shared::dynamo::{create_action, from_record, record_item, s};
use vocelio_shared::extract::JsonBody;
use vocelio_shared::ids::TenantId;
use vocelio_shared::keys::{PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, clock};

use crate::password::random_token;
use crate::principal::Principal;

/// Keys one organisation may hold (revoked ones included in the listing, not the count).
pub const MAX_KEYS: usize = 50;

/// A key as listed in settings (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `key_…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The first characters and the last four, for recognising it.
    pub masked: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Requests allowed per minute.
    pub requests_per_minute: u32,
    /// When it was made.
    pub created_at: String,
    /// Who made it.
    pub created_by: String,
    /// When it stops working, if ever.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `active` or `revoked`.
    pub status: String,
    /// The digest of the key (to remove its lookup item on revocation).
    pub digest: String,
    /// Last use.
    #[serde(default)]
    pub last_used_at: Option<String>,
}

fn key_json(record: &KeyRecord, item: Option<&vocelio_shared::dynamo::Item>) -> Value {
    let now = clock::now();
    let today = format!("requests_{}", clock::date_of(now));
    let month = &today[..today.len() - 3];
    let count = |name: &str| -> u64 {
        item.and_then(|i| match i.get(name) {
            Some(AttributeValue::N(n)) => n.parse().ok(),
            _ => None,
        })
        .unwrap_or(0)
    };
    let this_month: u64 = item
        .map(|i| {
            i.iter()
                .filter(|(k, _)| k.starts_with(month))
                .filter_map(|(_, v)| match v {
                    AttributeValue::N(n) => n.parse::<u64>().ok(),
                    _ => None,
                })
                .sum()
        })
        .unwrap_or(0);
    let expired = record.expires_at.as_deref().is_some_and(|at| {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|at| at <= now)
    });
    let status = match record.status.as_str() {
        "active" if expired => "expired",
        "active" => "active",
        _ => "disabled",
    };
    json!({
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "key": record.masked,
        "permissions": record.scopes,
        "scopes": record.scopes,
        "rate_limit": {
            "requests_per_minute": record.requests_per_minute,
            "requests_per_day": u64::from(record.requests_per_minute) * 1440,
        },
        "usage": {
            "requests_today": count(&today),
            "requests_this_month": this_month,
            "last_used": record.last_used_at,
        },
        "created_at": record.created_at,
        "created_by": record.created_by,
        "expires_at": record.expires_at,
        "status": status,
    })
}

async fn records(
    state: &AppState,
    tenant: &TenantId,
) -> ApiResult<Vec<(KeyRecord, vocelio_shared::dynamo::Item)>> {
    let query = state
        .db
        .query()
        .table_name(state.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :key)")
        .expression_attribute_values(":pk", s(tenant_keys_pk(tenant)))
        .expression_attribute_values(":key", s("KEY#"))
        .consistent_read(true);
    vocelio_shared::dynamo::query_all(query)
        .await?
        .into_iter()
        .map(|item| Ok((from_record::<KeyRecord>(item.clone())?, item)))
        .collect()
}

/// `GET /settings/api-keys` (and `/api-keys`): the organisation's keys, masked (admins).
pub async fn list(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.admin()?;
    let keys: Vec<Value> = records(&state, &principal.user.tenant)
        .await?
        .iter()
        .rev()
        .map(|(record, item)| key_json(record, Some(item)))
        .collect();
    Ok(Json(json!({ "data": keys })))
}

/// `POST /settings/api-keys {name, scopes | permissions, description?, rate_limit?,
/// expires_in_days?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    scopes: Option<Vec<String>>,
    permissions: Option<Vec<String>>,
    rate_limit: Option<RateLimitBody>,
    #[serde(rename = "rateLimit")]
    rate_limit_tier: Option<String>,
    expires_in_days: Option<u32>,
}

/// `{requests_per_minute}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitBody {
    requests_per_minute: Option<u32>,
}

/// Makes a key (admins); the answer holds the whole key, the only time it is shown.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<Response> {
    principal.admin()?;
    let mut check = vocelio_shared::validate::Violations::new();
    let name = check.text("name", body.name.as_deref().unwrap_or(""), 1, 100);
    let description = body
        .description
        .as_deref()
        .map(|d| check.text("description", d, 0, 500))
        .filter(|d| !d.is_empty());
    let names = body.scopes.or(body.permissions).unwrap_or_default();
    let mut scopes = Vec::new();
    for raw in &names {
        match Scope::parse(raw) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => check.add(
                "scopes",
                format!(
                    "{raw:?} is not a scope ({})",
                    Scope::ALL.map(Scope::as_str).join(", ")
                ),
            ),
        }
    }
    check.check(!names.is_empty(), "scopes", "name at least one scope");
    let per_minute = match (
        body.rate_limit.and_then(|r| r.requests_per_minute),
        body.rate_limit_tier.as_deref(),
    ) {
        (Some(n), _) => n,
        (None, Some("premium")) => 3000,
        (None, Some("enterprise")) => 10_000,
        (None, _) => 600,
    };
    check.check(
        (1..=10_000).contains(&per_minute),
        "rate_limit.requests_per_minute",
        "must be 1 to 10000",
    );
    if let Some(days) = body.expires_in_days {
        check.check(
            (1..=3650).contains(&days),
            "expires_in_days",
            "must be 1 to 3650",
        );
    }
    check.finish()?;
    let tenant = &principal.user.tenant;
    let live = records(&state, tenant)
        .await?
        .iter()
        .filter(|(r, _)| r.status == "active")
        .count();
    if live >= MAX_KEYS {
        return Err(ApiError::Refused {
            code: "api_key_limit",
            message: format!(
                "an organisation holds at most {MAX_KEYS} active API keys; revoke one first"
            ),
        });
    }
    let key = random_token(LIVE_PREFIX, 32);
    let key_digest = digest(&key);
    let now = clock::now();
    let expires_at = body
        .expires_in_days
        .map(|d| clock::rfc3339(now + time::Duration::days(i64::from(d))));
    let record = KeyRecord {
        id: vocelio_shared::ids::new_id("key"),
        name,
        description,
        masked: format!(
            "{}…{}",
            &key[..LIVE_PREFIX.len() + 4],
            &key[key.len() - 4..]
        ),
        scopes: scopes.clone(),
        requests_per_minute: per_minute,
        created_at: clock::rfc3339(now),
        created_by: principal.account_id.clone(),
        expires_at: expires_at.clone(),
        status: "active".into(),
        digest: key_digest.clone(),
        last_used_at: None,
    };
    let grant = Grant {
        tenant_id: tenant.as_str().to_owned(),
        key_id: record.id.clone(),
        scopes,
        requests_per_minute: per_minute,
        expires_at,
    };
    let table = state.table();
    let actions = vec![
        create_action(
            table,
            record_item(
                &record,
                vec![
                    (PK, tenant_keys_pk(tenant)),
                    (SK, tenant_key_sk(&record.id)),
                ],
            )?,
        )?,
        create_action(
            table,
            record_item(
                &grant,
                vec![(PK, lookup_pk(&key_digest)), (SK, LOOKUP_SK.into())],
            )?,
        )?,
    ];
    if vocelio_shared::dynamo::commit(&state.db, actions)
        .await?
        .is_some()
    {
        return Err(ApiError::internal("the API key could not be stored"));
    }
    let mut answer = key_json(&record, None);
    answer["key"] = Value::String(key);
    answer["message"] = Value::String("copy the key now: it is not shown again".into());
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn revoke_record(state: &AppState, tenant: &TenantId, record: &KeyRecord) -> ApiResult<()> {
    let table = state.table();
    let mark = Update::builder()
        .table_name(table)
        .key(PK, s(tenant_keys_pk(tenant)))
        .key(SK, s(tenant_key_sk(&record.id)))
        .update_expression("SET #status = :revoked, revoked_at = :now")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":revoked", s("revoked"))
        .expression_attribute_values(":now", s(clock::rfc3339(clock::now())))
        .build()
        .map_err(ApiError::internal)?;
    let actions = vec![
        vocelio_shared::dynamo::delete_action(table, lookup_pk(&record.digest), LOOKUP_SK, None)?,
        TransactWriteItem::builder().update(mark).build(),
    ];
    if vocelio_shared::dynamo::commit(&state.db, actions)
        .await?
        .is_some()
    {
        return Err(ApiError::internal("the API key could not be revoked"));
    }
    Ok(())
}

/// `DELETE /settings/api-keys/{id}`: the key stops working (within the few seconds other
/// instances cache it).
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> ApiResult<Json<Value>> {
    principal.admin()?;
    let tenant = &principal.user.tenant;
    if !vocelio_shared::ids::is_id("key", &key_id) {
        return Err(ApiError::not_found("API key"));
    }
    let item = crate::store::get(&state, tenant_keys_pk(tenant), &tenant_key_sk(&key_id))
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    let record: KeyRecord = from_record(item)?;
    if record.status == "active" {
        revoke_record(&state, tenant, &record).await?;
    }
    Ok(Json(
        json!({ "id": key_id, "status": "disabled", "message": "the key is revoked" }),
    ))
}

/// Revokes the keys `user_id` made (when the user is removed); how many.
pub async fn revoke_made_by(
    state: &AppState,
    tenant: &TenantId,
    user_id: &str,
) -> ApiResult<usize> {
    let mut revoked = 0;
    for (record, _) in records(state, tenant).await? {
        if record.status == "active" && record.created_by == user_id {
            revoke_record(state, tenant, &record).await?;
            revoked += 1;
        }
    }
    Ok(revoked)
}
