//! HTTP handlers of the call-transfer service.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use vocelio_shared::agent::AgentStatus;
use vocelio_shared::auth::{Authorized, Managers};
use vocelio_shared::extract::{IdempotencyKey, JsonBody, OptionalJsonBody, QueryParams};
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, clock, directory, idempotency, ids};

use crate::engine::{Engine, SentFigures, end_call};
use crate::model::{
    Call, Transfer, TransferStatus, estimated_wait_seconds, parse_time, seconds_between,
};
use crate::requests::{AppTransferRequest, CreateCall, GuideTransferRequest, UpdateCall};

type JsonResult = ApiResult<Json<Value>>;

// ---- calls ----

/// `POST /api/calls` → 201 `{call}` (idempotent on `call_id`).
pub async fn create_call(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    JsonBody(body): JsonBody<CreateCall>,
) -> ApiResult<Response> {
    let call = body.into_call(state.config.default_phone_region, clock::now())?;
    if let Some(sid) = &call.call_sid {
        ensure_sid_not_taken(&state, &user, &call.call_id, sid).await?;
    }
    let call = Engine::new(&state, &user.tenant).create_call(call).await?;
    Ok((StatusCode::CREATED, Json(json!({ "call": call }))).into_response())
}

/// `GET /api/calls/{call_id}` → `{call}`.
pub async fn get_call(
    State(state): State<AppState>,
    user: AuthUser,
    Path(call_id): Path<String>,
) -> JsonResult {
    let call = find_call(&state, &user, &call_id).await?;
    Ok(Json(json!({ "call": call })))
}

async fn find_call(state: &AppState, user: &AuthUser, call_id: &str) -> ApiResult<Call> {
    if !ids::is_key_safe(call_id) {
        return Err(ApiError::not_found("call"));
    }
    Engine::new(state, &user.tenant)
        .store
        .call(call_id)
        .await?
        .map(|(c, _)| c)
        .ok_or_else(|| ApiError::not_found("call"))
}

/// `PATCH /api/calls/{call_id}` → `{call}`: status only forward; ending computes the end
/// time, duration, AI and human minutes and costs.
pub async fn update_call(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    Path(call_id): Path<String>,
    JsonBody(patch): JsonBody<UpdateCall>,
) -> JsonResult {
    patch.check()?;
    if !ids::is_key_safe(&call_id) {
        return Err(ApiError::not_found("call"));
    }
    if let Some(sid) = &patch.call_sid {
        ensure_sid_not_taken(&state, &user, &call_id, sid).await?;
    }
    let prices = (
        state.config.ai_price_per_minute,
        state.config.human_price_per_minute,
    );
    let call = Engine::new(&state, &user.tenant)
        .update_call(&call_id, |call, now| apply_patch(call, &patch, now, prices))
        .await?;
    Ok(Json(json!({ "call": call })))
}

/// 409 `call_sid_taken` when `sid` is a carrier call we placed or answered for another
/// call (of this tenant or any other): a client cannot borrow a SID to act on it.
async fn ensure_sid_not_taken(
    state: &AppState,
    user: &AuthUser,
    call_id: &str,
    sid: &str,
) -> ApiResult<()> {
    let owner = state
        .db
        .get_item()
        .table_name(state.table())
        .key(
            vocelio_shared::keys::PK,
            vocelio_shared::dynamo::s(vocelio_shared::keys::carrier_call_pk(sid)),
        )
        .key(
            vocelio_shared::keys::SK,
            vocelio_shared::dynamo::s(vocelio_shared::keys::OWNER_SK),
        )
        .consistent_read(true)
        .send()
        .await
        .map_err(vocelio_shared::dynamo::sdk_error)?
        .item;
    let attr = |item: &vocelio_shared::dynamo::Item, name: &str| {
        item.get(name).and_then(|v| v.as_s().ok()).cloned()
    };
    match owner {
        Some(item)
            if attr(&item, "tenant_id").as_deref() != Some(user.tenant.as_str())
                || attr(&item, "call_id").as_deref() != Some(call_id) =>
        {
            Err(ApiError::conflict(
                "call_sid_taken",
                "this call_sid belongs to another call",
            ))
        }
        _ => Ok(()),
    }
}

fn apply_patch(
    call: &Call,
    patch: &UpdateCall,
    now: OffsetDateTime,
    prices: (f64, f64),
) -> ApiResult<Call> {
    if call.status.is_ended() {
        return Err(ApiError::Conflict {
            code: "call_ended",
            message: "the call has ended and cannot change".into(),
            current: serde_json::to_value(call).ok(),
        });
    }
    let mut next = call.clone();
    if let Some(flow) = &patch.current_flow {
        next.current_flow = Some(flow.trim().to_owned());
    }
    if let Some(sid) = &patch.call_sid {
        // A call the telephony adapter placed or answered keeps the SID Twilio gave it.
        if call.carrier.is_some() && call.call_sid.as_deref() != Some(sid.as_str()) {
            return Err(ApiError::conflict(
                "call_sid_managed",
                "this call is carried by our telephony; its call_sid is Twilio's and cannot change",
            ));
        }
        next.call_sid = Some(sid.clone());
    }
    if let Some(status) = patch.status {
        // A call our telephony carries ends at Twilio first (POST /api/calls/{id}/end):
        // ending only its record would leave it live, uncounted and out of every view.
        if call.carrier.is_some() && status.is_ended() {
            return Err(ApiError::conflict(
                "call_carried",
                "this call is live at Twilio: end it with POST /api/calls/{call_id}/end",
            ));
        }
        if !call.status.may_become(status) {
            return Err(ApiError::Conflict {
                code: "invalid_call_transition",
                message: format!(
                    "a call cannot go from {} to {}",
                    call.status.as_str(),
                    status.as_str()
                ),
                current: serde_json::to_value(call).ok(),
            });
        }
        if status.is_ended() {
            let sent = SentFigures {
                duration: patch.duration,
                ai_minutes: patch.ai_minutes,
                transfer_minutes: patch.transfer_minutes,
                cost_ai: patch.cost_ai,
                cost_human: patch.cost_human,
            };
            end_call(&mut next, status, now, prices, &sent);
        } else {
            next.status = status;
        }
    }
    if !next.status.is_ended() {
        next.ai_minutes = patch.ai_minutes.unwrap_or(next.ai_minutes);
        next.cost_ai = patch.cost_ai.unwrap_or(next.cost_ai);
        next.cost_human = patch.cost_human.unwrap_or(next.cost_human);
        next.transfer_minutes = patch.transfer_minutes.unwrap_or(next.transfer_minutes);
    }
    next.updated_at = clock::rfc3339(now);
    Ok(next)
}

/// `GET /api/calls/active` → `{active_calls}` exactly as the Live Call Monitor reads it.
pub async fn active_calls(State(state): State<AppState>, user: AuthUser) -> JsonResult {
    let rows = active_rows(&state, &user.tenant).await?;
    Ok(Json(json!({ "active_calls": rows, "total": rows.len() })))
}

/// The Live Call Monitor's rows for `tenant`.
pub async fn active_rows(
    state: &AppState,
    tenant: &vocelio_shared::ids::TenantId,
) -> ApiResult<Vec<Value>> {
    let calls = Engine::new(state, tenant).store.active_calls().await?;
    let names = department_names(state, tenant).await?;
    let now = clock::now();
    Ok(calls.iter().map(|c| active_row(c, &names, now)).collect())
}

fn active_row(call: &Call, names: &HashMap<String, String>, now: OffsetDateTime) -> Value {
    json!({
        "call_id": call.call_id,
        "call_sid": call.call_sid,
        "caller_number": call.caller_number,
        "current_flow": call.current_flow,
        "assigned_agent": call.assigned_agent,
        "current_department": call.current_department.as_ref().map(|d| names.get(d).cloned().unwrap_or_else(|| d.clone())),
        "department_id": call.current_department,
        "duration": call.live_duration(now),
        "status": call.status,
        "can_transfer": call.can_transfer(),
        "open_transfer_id": call.open_transfer_id,
        "start_time": call.start_time,
    })
}

async fn department_names(
    state: &AppState,
    tenant: &vocelio_shared::ids::TenantId,
) -> ApiResult<HashMap<String, String>> {
    Ok(directory::departments(state, tenant)
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect())
}

/// Query of the Call Logs page and of the guide's `/call-logs`.
#[derive(Debug, Deserialize)]
pub struct LogParams {
    page: Option<u32>,
    limit: Option<u32>,
    date_range: Option<String>,
    status: Option<String>,
    has_transfer: Option<bool>,
    search: Option<String>,
    department: Option<String>,
    agent_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/calls/logs` and `GET /call-logs` → `{call_logs, total, page, limit, next_cursor}`,
/// newest first, read by one bounded Query (at most 90 days) on the calls-by-time index.
pub async fn call_logs(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(params): QueryParams<LogParams>,
) -> JsonResult {
    let now = clock::now();
    let days = match params.date_range.as_deref() {
        None | Some("7days") => 7,
        Some("1day") => 1,
        Some("30days") => 30,
        Some("90days") => 90,
        Some(_) => {
            return Err(ApiError::field(
                "date_range",
                "must be 1day, 7days, 30days or 90days",
            ));
        }
    };
    let (from, to) =
        crate::requests::period(params.from.as_deref(), params.to.as_deref(), days, now)?;
    let limit = vocelio_shared::dynamo::page_limit(params.limit, 20, 200)? as usize;
    let status = params.status.as_deref();
    if let Some(s) = status {
        let known = [
            "completed",
            "transferred",
            "missed",
            "abandoned",
            "failed",
            "active",
            "connected",
            "ringing",
            "on_hold",
            "transferring",
        ];
        if !known.contains(&s) {
            return Err(ApiError::field(
                "status",
                "is not a call status (completed, transferred, missed, abandoned, ...)",
            ));
        }
    }
    let search = params
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let department = match params.department.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => Some(
            directory::resolve(&state, &user.tenant, d)
                .await?
                .unwrap_or_default(),
        ),
        None => None,
    };
    let engine = Engine::new(&state, &user.tenant);
    let mut calls = engine
        .store
        .calls_between(&clock::rfc3339(from), &clock::rfc3339(to))
        .await?;
    calls.reverse();
    let names = department_names(&state, &user.tenant).await?;
    let matching: Vec<&Call> = calls
        .iter()
        .filter(|c| match status {
            None => true,
            Some("transferred") => c.transfers.iter().any(|t| {
                matches!(
                    t.status,
                    TransferStatus::Connected | TransferStatus::Completed
                )
            }),
            Some(s) => c.status.as_str() == s,
        })
        .filter(|c| {
            params
                .has_transfer
                .is_none_or(|want| (c.transfer_count > 0) == want)
        })
        .filter(|c| {
            search.as_deref().is_none_or(|q| {
                c.caller_number.to_lowercase().contains(q)
                    || c.call_id.to_lowercase().contains(q)
                    || q.chars()
                        .filter(char::is_ascii_digit)
                        .collect::<String>()
                        .len()
                        >= 3
                        && c.caller_number
                            .contains(&q.chars().filter(char::is_ascii_digit).collect::<String>())
            })
        })
        .filter(|c| {
            department.as_deref().is_none_or(|d| {
                c.current_department.as_deref() == Some(d)
                    || c.transfers.iter().any(|t| t.department_id == d)
            })
        })
        .filter(|c| {
            params.agent_id.as_deref().is_none_or(|a| {
                c.assigned_agent.as_deref() == Some(a)
                    || c.transfers.iter().any(|t| t.agent_id.as_deref() == Some(a))
            })
        })
        .collect();
    let total = matching.len();
    let offset = match params.cursor.as_deref() {
        Some(cursor) => decode_offset(cursor)?,
        None => (params.page.unwrap_or(1).max(1) as usize - 1) * limit,
    };
    let page = offset / limit + 1;
    let rows: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| log_row(c, &names))
        .collect();
    let next = offset + rows.len();
    let next_cursor = (next < total).then(|| encode_offset(next));
    Ok(Json(json!({
        "call_logs": rows,
        "total": total,
        "page": page,
        "limit": limit,
        "pages": total.div_ceil(limit),
        "next_cursor": next_cursor,
    })))
}

fn encode_offset(offset: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_offset(cursor: &str) -> ApiResult<usize> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this list returned")
        })
}

fn log_row(call: &Call, names: &HashMap<String, String>) -> Value {
    json!({
        "call_id": call.call_id,
        "caller_number": call.caller_number,
        "called_number": call.called_number,
        "direction": call.direction,
        "start_time": call.start_time,
        "end_time": call.end_time,
        "total_duration": call.duration.unwrap_or(0),
        "status": call.status,
        "call_sid": call.call_sid,
        "carrier_status": call.carrier.as_ref().map(|c| c.status.clone()),
        "telephony_price": call.carrier.as_ref().and_then(|c| c.price),
        "price_unit": call.carrier.as_ref().and_then(|c| c.price_unit.clone()),
        "ai_minutes": call.ai_minutes,
        "transfer_minutes": call.transfer_minutes,
        "cost_ai": call.cost_ai,
        "cost_human": call.cost_human,
        "transfer_count": call.transfer_count,
        "assigned_agent": call.assigned_agent,
        "current_department": call.current_department.as_ref().map(|d| names.get(d).cloned().unwrap_or_else(|| d.clone())),
        "transfers": call.transfers.iter().map(|t| json!({
            "transfer_id": t.transfer_id,
            "target_department": t.target_department,
            "department_id": t.department_id,
            "agent_id": t.agent_id,
            "status": t.status,
            "requested_at": t.requested_at,
        })).collect::<Vec<_>>(),
    })
}

// ---- transfers ----

/// `POST /api/calls/transfer` (the app's shape) → 201 `{transfer_id, status, transfer, ...}`.
pub async fn request_transfer(
    State(state): State<AppState>,
    user: AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<AppTransferRequest>,
) -> ApiResult<Response> {
    raise(&state, &user, key, body).await
}

/// `POST /transfer/request` (the guide's shape), the same operation.
pub async fn request_transfer_guide(
    State(state): State<AppState>,
    user: AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<GuideTransferRequest>,
) -> ApiResult<Response> {
    raise(&state, &user, key, body.into()).await
}

async fn raise(
    state: &AppState,
    user: &AuthUser,
    key: Option<String>,
    body: AppTransferRequest,
) -> ApiResult<Response> {
    let request = body.validate()?;
    let guard = idempotency::guard(&user.tenant, "request_transfer", key.as_deref(), &request)?;
    let engine = Engine::new(state, &user.tenant);
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), state).await? {
        return replay_transfer(&engine, state, &replay.body).await;
    }
    match engine.request(request, &user.user_id, guard.as_ref()).await {
        Ok(transfer) => {
            let view = transfer_view(&engine, state, &transfer).await?;
            Ok((StatusCode::CREATED, Json(created_body(view))).into_response())
        }
        Err(err) => match idempotency::replay_of(guard.as_ref(), state).await? {
            Some(replay) => replay_transfer(&engine, state, &replay.body).await,
            None => Err(err),
        },
    }
}

async fn replay_transfer(
    engine: &Engine<'_>,
    state: &AppState,
    stored: &Value,
) -> ApiResult<Response> {
    let id = stored["transfer_id"].as_str().unwrap_or_default();
    let (transfer, _) = engine
        .store
        .transfer(id)
        .await?
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    let view = transfer_view(engine, state, &transfer).await?;
    let mut response = (StatusCode::CREATED, Json(created_body(view))).into_response();
    response.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    Ok(response)
}

fn created_body(view: Value) -> Value {
    json!({
        "transfer_id": view["transfer_id"],
        "status": view["status"],
        "agent_id": view["agent_id"],
        "queue_position": view["queue_position"],
        "estimated_wait_seconds": view["estimated_wait_seconds"],
        "transfer": view,
    })
}

/// A transfer with its live queue position, estimated wait and time waited.
async fn transfer_view(
    engine: &Engine<'_>,
    state: &AppState,
    transfer: &Transfer,
) -> ApiResult<Value> {
    let mut view = serde_json::to_value(transfer).map_err(ApiError::internal)?;
    let now = clock::now();
    let waited = parse_time(&transfer.requested_at).map_or(0, |t| seconds_between(t, now));
    view["wait_time"] = json!(waited);
    if transfer.status == TransferStatus::Queued {
        let position = engine.store.queue_position(transfer).await?;
        let staffed = engine
            .store
            .agents_in(&transfer.department_id, None)
            .await?
            .iter()
            .filter(|a| a.status != AgentStatus::Offline)
            .count();
        let handle = average_handle_seconds(engine, state, &transfer.department_id).await?;
        view["queue_position"] = json!(position);
        view["estimated_wait_seconds"] = json!(estimated_wait_seconds(position, staffed, handle));
    } else {
        view["queue_position"] = Value::Null;
        view["estimated_wait_seconds"] = Value::Null;
    }
    Ok(view)
}

/// The department's mean handle time (accepted to completed) over the tenant's 50 most
/// recent transfers (one bounded Query), or the configured default before it has any.
async fn average_handle_seconds(
    engine: &Engine<'_>,
    state: &AppState,
    department_id: &str,
) -> ApiResult<f64> {
    let recent = engine.store.recent_transfers(50).await?;
    let handles: Vec<u64> = recent
        .iter()
        .filter(|t| t.department_id == department_id && t.status == TransferStatus::Completed)
        .filter_map(|t| {
            Some(seconds_between(
                parse_time(t.accepted_at.as_deref()?)?,
                parse_time(t.ended_at.as_deref()?)?,
            ))
        })
        .collect();
    Ok(if handles.is_empty() {
        f64::from(state.config.default_handle_seconds)
    } else {
        handles.iter().sum::<u64>() as f64 / handles.len() as f64
    })
}

/// `GET /transfer/{id}` and `/api/transfers/{id}` → `{transfer}`.
pub async fn get_transfer(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> JsonResult {
    let engine = Engine::new(&state, &user.tenant);
    if !ids::is_id("transfer", &id) {
        return Err(ApiError::not_found("transfer"));
    }
    let (transfer, _) = engine
        .store
        .transfer(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    Ok(Json(
        json!({ "transfer": transfer_view(&engine, &state, &transfer).await? }),
    ))
}

/// `POST /transfer/{id}/accept`.
pub async fn accept(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> JsonResult {
    let engine = Engine::new(&state, &user.tenant);
    let transfer = engine.accept(&user, &id).await?;
    Ok(Json(
        json!({ "transfer": transfer_view(&engine, &state, &transfer).await? }),
    ))
}

/// `POST /transfer/{id}/decline`.
pub async fn decline(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> JsonResult {
    let engine = Engine::new(&state, &user.tenant);
    let transfer = engine
        .decline(Some(&user), &id, crate::engine::Decline::Declined)
        .await?;
    Ok(Json(
        json!({ "transfer": transfer_view(&engine, &state, &transfer).await? }),
    ))
}

/// `{outcome?, notes?}` of a completion.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

/// `POST /transfer/{id}/complete` `{outcome?, notes?}`.
pub async fn complete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Completion>,
) -> JsonResult {
    let body = body.unwrap_or_default();
    let mut v = vocelio_shared::validate::Violations::new();
    let outcome = body.outcome.as_ref().map(|o| v.text("outcome", o, 1, 100));
    let notes = body.notes.as_ref().map(|n| v.text("notes", n, 0, 4000));
    v.finish()?;
    let engine = Engine::new(&state, &user.tenant);
    let transfer = engine.complete(&user, &id, outcome, notes).await?;
    Ok(Json(
        json!({ "transfer": transfer_view(&engine, &state, &transfer).await? }),
    ))
}

/// `{reason?}` of a cancellation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancellation {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /transfer/{id}/cancel` `{reason?}`.
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Cancellation>,
) -> JsonResult {
    let body = body.unwrap_or_default();
    let mut v = vocelio_shared::validate::Violations::new();
    let reason = body.reason.as_ref().map(|r| v.text("reason", r, 1, 200));
    v.finish()?;
    let engine = Engine::new(&state, &user.tenant);
    let transfer = engine.cancel(Some(&user), &id, reason).await?;
    Ok(Json(
        json!({ "transfer": transfer_view(&engine, &state, &transfer).await? }),
    ))
}

/// `GET /api/call/{call_id}/transfer-history` → `{call_id, transfer_history}` oldest first.
pub async fn transfer_history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(call_id): Path<String>,
) -> JsonResult {
    let call = find_call(&state, &user, &call_id).await?;
    let ids: Vec<String> = call
        .transfers
        .iter()
        .map(|t| t.transfer_id.clone())
        .collect();
    let transfers = Engine::new(&state, &user.tenant)
        .store
        .transfers(&ids)
        .await?;
    Ok(Json(
        json!({ "call_id": call.call_id, "transfer_history": transfers }),
    ))
}

// ---- queues ----

/// `GET /departments/{id}/queue` → the queue in service order and the department's agents.
pub async fn department_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> JsonResult {
    let department = directory::department(&state, &user.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("department"))?;
    let engine = Engine::new(&state, &user.tenant);
    let queue = engine.store.queue(&department.id).await?;
    let agents = engine.store.agents_in(&department.id, None).await?;
    let now = clock::now();
    let count = |s: AgentStatus| agents.iter().filter(|a| a.status == s).count();
    let details: Vec<Value> = queue
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "position": i + 1,
                "transfer_id": t.transfer_id,
                "call_id": t.call_id,
                "caller_number": t.caller_number,
                "context_summary": t.context_summary,
                "urgency_level": t.urgency_level,
                "required_skills": t.required_skills,
                "language": t.language,
                "requested_at": t.requested_at,
                "wait_time": parse_time(&t.requested_at).map_or(0, |r| seconds_between(r, now)),
            })
        })
        .collect();
    Ok(Json(json!({
        "department": {"id": department.id, "name": department.name, "is_active": department.is_active},
        "queue_length": details.len(),
        "queue_details": details,
        "agents_available": count(AgentStatus::Available),
        "agents_busy": count(AgentStatus::Busy),
        "agents_wrap_up": count(AgentStatus::WrapUp),
        "agents_on_break": count(AgentStatus::OnBreak),
        "agents_offline": count(AgentStatus::Offline),
    })))
}

/// `GET /queue/status` → per department: queued, longest wait, agents by status; totals.
pub async fn queue_status(State(state): State<AppState>, user: AuthUser) -> JsonResult {
    let engine = Engine::new(&state, &user.tenant);
    let now = clock::now();
    let mut rows = Vec::new();
    let mut totals: HashMap<&str, usize> = HashMap::new();
    let mut longest_overall = 0;
    for department in directory::departments(&state, &user.tenant)
        .await?
        .into_iter()
        .filter(|d| d.is_active)
    {
        let queue = engine.store.queue(&department.id).await?;
        let agents = engine.store.agents_in(&department.id, None).await?;
        let longest = queue
            .iter()
            .filter_map(|t| parse_time(&t.requested_at))
            .map(|r| seconds_between(r, now))
            .max()
            .unwrap_or(0);
        longest_overall = longest_overall.max(longest);
        let mut by_status = serde_json::Map::new();
        for status in [
            AgentStatus::Available,
            AgentStatus::Busy,
            AgentStatus::WrapUp,
            AgentStatus::OnBreak,
            AgentStatus::Offline,
        ] {
            let n = agents.iter().filter(|a| a.status == status).count();
            *totals.entry(status.as_str()).or_default() += n;
            by_status.insert(status.as_str().to_owned(), json!(n));
        }
        *totals.entry("queued").or_default() += queue.len();
        rows.push(json!({
            "department_id": department.id,
            "name": department.name,
            "queued": queue.len(),
            "longest_wait_seconds": longest,
            "agents": by_status,
        }));
    }
    Ok(Json(json!({
        "departments": rows,
        "totals": {
            "queued": totals.get("queued").copied().unwrap_or(0),
            "longest_wait_seconds": longest_overall,
            "agents_available": totals.get("available").copied().unwrap_or(0),
            "agents_busy": totals.get("busy").copied().unwrap_or(0),
            "agents_wrap_up": totals.get("wrap_up").copied().unwrap_or(0),
            "agents_on_break": totals.get("on_break").copied().unwrap_or(0),
            "agents_offline": totals.get("offline").copied().unwrap_or(0),
        },
    })))
}
