//! HTTP handlers: parse, authorize, call the domain, persist through the repository.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vocelio_shared::auth::{Admins, Authorized};
use vocelio_shared::dynamo::page_limit;
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::extract::{IdempotencyKey, JsonBody, QueryParams};
use vocelio_shared::idempotency;
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, clock, ids};

use crate::domain::{CreateDepartment, Department, UpdateDepartment};
use crate::repo::DepartmentRepo;

/// `?include_inactive=&limit=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    include_inactive: bool,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/departments` → `{departments, next_cursor}`.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<serde_json::Value>> {
    let limit = page_limit(params.limit, 100, 200)?;
    let page = DepartmentRepo::new(&state, &user.tenant)
        .list(params.include_inactive, limit, params.cursor.as_deref())
        .await?;
    Ok(Json(
        json!({ "departments": page.departments, "next_cursor": page.next_cursor }),
    ))
}

/// `POST /api/departments` → 201 `{department}` (admins; accepts `Idempotency-Key`).
pub async fn create(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Admins>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<CreateDepartment>,
) -> ApiResult<Response> {
    let guard = idempotency::guard(&user.tenant, "create_department", key.as_deref(), &request)?;
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), &state).await? {
        return Ok(replay.into_response());
    }
    let now = clock::now();
    let department = request.into_department(state.config.default_phone_region, now)?;
    let body = json!({ "department": department });
    let mut extra = vec![
        DomainEvent::new(types::DEPARTMENT_CREATED, &department, now)?.put(&state, &user.tenant)?,
    ];
    if let Some(guard) = &guard {
        extra.push(guard.record(&state, StatusCode::CREATED, &body)?);
    }
    let repo = DepartmentRepo::new(&state, &user.tenant);
    idempotency::finish_create(
        &state,
        guard.as_ref(),
        StatusCode::CREATED,
        body,
        repo.create(&department, extra),
    )
    .await
}

/// `GET /api/departments/{id}` → `{department}` (inactive ones too: history names them).
pub async fn get_one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let department = find(&state, &user, &id).await?;
    Ok(Json(json!({ "department": department })))
}

/// `PUT /api/departments/{id}` (partial) → `{department}` (admins).
pub async fn update(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Admins>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UpdateDepartment>,
) -> ApiResult<Json<serde_json::Value>> {
    let before = find(&state, &user, &id).await?;
    let now = clock::now();
    let updated = patch.apply(&before, state.config.default_phone_region, now)?;
    let event_type = if updated.deactivates {
        types::DEPARTMENT_DELETED
    } else {
        types::DEPARTMENT_UPDATED
    };
    let event = DomainEvent::new(event_type, &updated.department, now)?;
    DepartmentRepo::new(&state, &user.tenant)
        .update(&before, &updated, &event)
        .await?;
    Ok(Json(json!({ "department": updated.department })))
}

/// `DELETE /api/departments/{id}` → `{department, deleted}` (admins). A soft delete: the
/// department becomes inactive (history still names it) and its name is free again. Refused
/// with 409 `department_in_use` while agents are registered to it. Deleting an inactive
/// department again answers the same (idempotent).
pub async fn delete(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Admins>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let before = find(&state, &user, &id).await?;
    if !before.is_active {
        return Ok(Json(json!({ "department": before, "deleted": true })));
    }
    let repo = DepartmentRepo::new(&state, &user.tenant);
    let queued = repo.queued(&before.id).await?;
    if queued > 0 {
        return Err(ApiError::Conflict {
            code: "department_in_use",
            message: format!(
                "{queued} caller(s) wait in this department's queue; cancel or re-route them first"
            ),
            current: serde_json::to_value(&before).ok(),
        });
    }
    let now = clock::now();
    let after = Department {
        is_active: false,
        updated_at: clock::rfc3339(now),
        ..before.clone()
    };
    let event = DomainEvent::new(types::DEPARTMENT_DELETED, &after, now)?;
    DepartmentRepo::new(&state, &user.tenant)
        .deactivate(&before, &after, &event)
        .await?;
    Ok(Json(json!({ "department": after, "deleted": true })))
}

async fn find(state: &AppState, user: &AuthUser, id: &str) -> ApiResult<Department> {
    if !ids::is_id("dept", id) {
        return Err(ApiError::not_found("department"));
    }
    DepartmentRepo::new(state, &user.tenant)
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("department"))
}
