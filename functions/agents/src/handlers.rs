//! HTTP handlers of the agents function.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vocelio_shared::auth::{Authorized, Managers};
use vocelio_shared::dynamo::page_limit;
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::extract::{IdempotencyKey, JsonBody, QueryParams};
use vocelio_shared::idempotency;
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, clock, directory, ids};

use crate::domain::{Agent, AgentStatus, ChangeStatus, RegisterAgent, may_change_status};
use crate::repo::{AgentFilter, AgentRepo};

/// `POST /api/agents/register` → 201 `{agent}` (admins and supervisors; accepts
/// `Idempotency-Key`).
pub async fn register(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<RegisterAgent>,
) -> ApiResult<Response> {
    let guard = idempotency::guard(&user.tenant, "register_agent", key.as_deref(), &request)?;
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), &state).await? {
        return Ok(replay.into_response());
    }
    request.validate()?;
    let department_id = directory::resolve(&state, &user.tenant, &request.department)
        .await?
        .ok_or_else(|| ApiError::field("department", "no active department has this id or name"))?;
    let now = clock::now();
    let agent = request.into_agent(department_id, now)?;
    let body = json!({ "agent": agent });
    let mut extra =
        vec![DomainEvent::new(types::AGENT_REGISTERED, &agent, now)?.put(&state, &user.tenant)?];
    if let Some(guard) = &guard {
        extra.push(guard.record(&state, StatusCode::CREATED, &body)?);
    }
    let repo = AgentRepo::new(&state, &user.tenant);
    idempotency::finish_create(
        &state,
        guard.as_ref(),
        StatusCode::CREATED,
        body,
        repo.register(&agent, extra),
    )
    .await
}

/// `?department=&status=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    department: Option<String>,
    status: Option<AgentStatus>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/agents` → `{agents, next_cursor}`; `department` is an id or a name.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let limit = page_limit(params.limit, 100, 200)?;
    let department_id = match params
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(department) => match directory::resolve(&state, &user.tenant, department).await? {
            Some(id) => Some(id),
            None => return Ok(Json(json!({ "agents": [], "next_cursor": null }))),
        },
    };
    let filter = AgentFilter {
        department_id,
        status: params.status,
    };
    let page = AgentRepo::new(&state, &user.tenant)
        .list(&filter, limit, params.cursor.as_deref())
        .await?;
    Ok(Json(
        json!({ "agents": page.agents, "next_cursor": page.next_cursor }),
    ))
}

/// `GET /api/agents/{agent_id}` → `{agent}`.
pub async fn get_one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let agent = find(&state, &user, &agent_id).await?;
    Ok(Json(json!({ "agent": agent })))
}

/// `PUT /api/agents/{agent_id}/status` `{status, current_call_id?}` → `{agent}`. Agents may
/// change only their own status; supervisors and admins anyone's in their tenant.
pub async fn change_status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(agent_id): Path<String>,
    JsonBody(change): JsonBody<ChangeStatus>,
) -> ApiResult<Json<serde_json::Value>> {
    if !may_change_status(&user, &agent_id) {
        return Err(ApiError::Forbidden(
            "agents may change only their own status".into(),
        ));
    }
    let before = find(&state, &user, &agent_id).await?;
    let now = clock::now();
    let after = change.apply(&before, now)?;
    let event = DomainEvent::new(
        types::AGENT_STATUS_CHANGED,
        &json!({ "agent": after, "previous_status": before.status }),
        now,
    )?;
    let repo = AgentRepo::new(&state, &user.tenant);
    repo.change_status(&before, &after, &event).await?;
    // An agent who becomes available takes the head of the queues they are eligible for.
    if after.status == AgentStatus::Available {
        // Best effort: the status change has committed; if handing over the queue fails,
        // the caller still gets its answer and the next availability tries again.
        match transfers::engine::Engine::new(&state, &user.tenant)
            .serve_agent(&after.agent_id)
            .await
        {
            Ok(Some(transfer)) => {
                let agent = repo
                    .get(&after.agent_id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(after);
                return Ok(Json(
                    json!({ "agent": agent, "offered_transfer": transfer }),
                ));
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, agent = %after.agent_id, "queue hand-off failed")
            }
        }
    }
    Ok(Json(json!({ "agent": after })))
}

/// `DELETE /api/agents/{agent_id}` → `{agent, deleted}` (admins and supervisors): the agent
/// is removed and no longer counts on its department; refused while busy on a call.
pub async fn deregister(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let before = find(&state, &user, &agent_id).await?;
    let event = DomainEvent::new(types::AGENT_DEREGISTERED, &before, clock::now())?;
    AgentRepo::new(&state, &user.tenant)
        .deregister(&before, &event)
        .await?;
    Ok(Json(json!({ "agent": before, "deleted": true })))
}

async fn find(state: &AppState, user: &AuthUser, agent_id: &str) -> ApiResult<Agent> {
    if !ids::is_key_safe(agent_id) {
        return Err(ApiError::not_found("agent"));
    }
    AgentRepo::new(state, &user.tenant)
        .get(agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))
}
