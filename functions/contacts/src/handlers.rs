//! HTTP handlers: parse, authorize, call the domain, shape the answer the contact guide (and
//! the deployed app's `/api/contacts/...` reads) expect.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vocelio_shared::auth::{Admins, Authorized, Managers, RoleSet};
use vocelio_shared::extract::{IdempotencyKey, JsonBody, QueryParams};
use vocelio_shared::idempotency;
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, Role};

use crate::bulk::{self, BulkBody};
use crate::contacts::{self, Filters, Source, UpdateMode};
use crate::dnc::{self, DncListBody, EntriesBody, ScrubBody};
use crate::export;
use crate::import::{self, UploadBody};
use crate::input::{ContactBody, normalize_tag};
use crate::lists::{self, Change, ListBody};
use crate::model::{ContactStatus, ListStatus};
use crate::service::Contacts;

type Answer = ApiResult<Response>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn created(body: Value) -> Answer {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `page`/`limit`: page from 1, limit 1-100 (default 25).
fn paging(page: Option<u64>, limit: Option<u64>) -> ApiResult<(u64, u64)> {
    let page = page.unwrap_or(1);
    if page == 0 || page > 1_000_000 {
        return Err(ApiError::field("page", "must be 1 or more"));
    }
    let limit = limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    Ok((page, limit))
}

fn pagination(page: u64, limit: u64, total: Option<u64>, has_more: bool) -> Value {
    json!({
        "page": page,
        "limit": limit,
        "total": total,
        "pages": total.map(|t| t.div_ceil(limit).max(1)),
        "hasMore": has_more,
        "totalExact": total.is_some(),
    })
}

fn tag_filter(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or_default()
        .split(',')
        .map(normalize_tag)
        .filter(|t| !t.is_empty())
        .collect()
}

fn status_filter(status: Option<&str>) -> ApiResult<Option<ContactStatus>> {
    match status
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "all")
    {
        None => Ok(None),
        Some(s) => ContactStatus::parse(s)
            .map(Some)
            .ok_or_else(|| ApiError::field("status", "must be active, inactive or doNotCall")),
    }
}

// ----- contact lists -----

/// Query of `GET /v1/contact-lists`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListsQuery {
    page: Option<u64>,
    limit: Option<u64>,
    search: Option<String>,
    status: Option<String>,
    tags: Option<String>,
}

/// `GET /v1/contact-lists` → `{data, pagination}` (active lists unless `status` says).
pub async fn lists_index(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(q): QueryParams<ListsQuery>,
) -> Answer {
    let (page, limit) = paging(q.page, q.limit)?;
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") | Some("active") => Some(ListStatus::Active),
        Some("archived") => Some(ListStatus::Archived),
        Some("all") => None,
        Some(_) => return Err(ApiError::field("status", "must be active, archived or all")),
    };
    let search = q
        .search
        .as_deref()
        .map(crate::keys::fold)
        .filter(|s| !s.is_empty());
    let tags = tag_filter(q.tags.as_deref());
    let all: Vec<_> = lists::all(&state, &user.tenant)
        .await?
        .into_iter()
        .filter(|l| status.is_none_or(|s| l.status == s))
        .filter(|l| {
            search.as_ref().is_none_or(|s| {
                crate::keys::fold(&format!(
                    "{} {}",
                    l.name,
                    l.description.as_deref().unwrap_or_default()
                ))
                .contains(s.as_str())
            })
        })
        .filter(|l| tags.iter().all(|t| l.tags.contains(t)))
        .collect();
    let total = all.len() as u64;
    let data: Vec<_> = all
        .into_iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .collect();
    ok(json!({
        "data": data,
        "pagination": pagination(page, limit, Some(total), page * limit < total),
        "nextCursor": null,
    }))
}

/// `POST /v1/contact-lists` → 201 `{data}` (accepts `Idempotency-Key`).
pub async fn lists_create(
    State(state): State<AppState>,
    user: AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<ListBody>,
) -> Answer {
    let guard = idempotency::guard(&user.tenant, "contact_lists.create", key.as_deref(), &body)?;
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), &state).await? {
        return Ok(replay.into_response());
    }
    let result = lists::create(&state, &user.tenant, &user.user_id, &body, |list| {
        guard
            .as_ref()
            .map(|g| g.record(&state, StatusCode::CREATED, &json!({ "data": list })))
            .into_iter()
            .collect()
    })
    .await;
    match result {
        Ok(list) => created(json!({ "data": list })),
        Err(err) => match idempotency::replay_of(guard.as_ref(), &state).await? {
            Some(replay) => Ok(replay.into_response()),
            None => Err(err),
        },
    }
}

/// `GET /v1/contact-lists/{id}` → `{data}`.
pub async fn lists_show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Answer {
    ok(json!({ "data": lists::find(&state, &user.tenant, &id).await? }))
}

/// `PUT /v1/contact-lists/{id}` → `{data}`.
pub async fn lists_update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ListBody>,
) -> Answer {
    ok(json!({ "data": lists::update(&state, &user.tenant, &id, &body).await? }))
}

/// Query of `DELETE /v1/contact-lists/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteListQuery {
    #[serde(default)]
    hard: bool,
}

/// `DELETE /v1/contact-lists/{id}`: archives (managers); `?hard=true` (admins) removes the
/// list and every membership.
pub async fn lists_delete(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DeleteListQuery>,
) -> Answer {
    if q.hard {
        user.require(Admins::ROLES)?;
        let removed = lists::hard_delete(&state, &user.tenant, &id).await?;
        return ok(json!({ "data": { "id": id, "deleted": true, "membersRemoved": removed } }));
    }
    ok(json!({ "data": lists::archive(&state, &user.tenant, &id).await? }))
}

/// Body of the membership routes.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembersBody {
    contact_ids: Vec<String>,
}

async fn change_members(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    body: &MembersBody,
    change: Change,
) -> Answer {
    if body.contact_ids.is_empty() || body.contact_ids.len() > bulk::MAX_BULK_IDS {
        return Err(ApiError::field(
            "contactIds",
            format!("must name 1-{} contacts", bulk::MAX_BULK_IDS),
        ));
    }
    let outcome =
        lists::change_members(state, &user.tenant, id, &body.contact_ids, change, false).await?;
    let list = lists::find(state, &user.tenant, id).await?;
    ok(json!({
        "data": {
            "listId": id,
            "contactCount": list.contact_count,
            (if change == Change::Add { "added" } else { "removed" }): outcome.changed,
            "unchanged": outcome.unchanged,
            "failed": outcome.failed,
        }
    }))
}

/// `POST /v1/contact-lists/{id}/contacts {contactIds}`.
pub async fn members_add(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MembersBody>,
) -> Answer {
    change_members(&state, &user, &id, &body, Change::Add).await
}

/// `DELETE /v1/contact-lists/{id}/contacts {contactIds}`.
pub async fn members_remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MembersBody>,
) -> Answer {
    change_members(&state, &user, &id, &body, Change::Remove).await
}

/// Query of `GET /v1/contact-lists/{id}/export`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    delivery: Option<String>,
}

/// `GET /v1/contact-lists/{id}/export` → the CSV, streamed; `?delivery=url` → `{data: {url}}`
/// (a presigned S3 download: the way for lists beyond API Gateway's 6 MB response).
/// Managers only: a whole list leaves the system.
pub async fn lists_export(
    State(state): State<AppState>,
    Extension(svc): Extension<Contacts>,
    Authorized(user, _): Authorized<Managers>,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<ExportQuery>,
) -> Answer {
    let list = lists::find(&state, &user.tenant, &id).await?;
    let safe: String = list
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file_name = format!("{safe}.csv");
    match q.delivery.as_deref() {
        None | Some("stream") => {
            let body = Body::from_stream(export::stream(state.clone(), user.tenant.clone(), id));
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file_name}\""),
                    ),
                ],
                body,
            )
                .into_response())
        }
        Some("url") => {
            let (url, _) = export::to_s3(&svc, &user.tenant, &id, &file_name).await?;
            ok(
                json!({ "data": { "url": url, "fileName": file_name, "contactCount": list.contact_count } }),
            )
        }
        Some(_) => Err(ApiError::field("delivery", "must be stream or url")),
    }
}

// ----- contacts -----

/// Query of `GET /v1/contacts` (and a list's contacts).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactsQuery {
    page: Option<u64>,
    limit: Option<u64>,
    search: Option<String>,
    list_id: Option<String>,
    status: Option<String>,
    tags: Option<String>,
    cursor: Option<String>,
}

/// `GET /v1/contacts` → `{data, pagination, nextCursor}`. `search` without `listId` goes
/// through the tenant's index items (phone, email, name prefix); with `listId` it filters
/// the list's members.
pub async fn contacts_index(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(q): QueryParams<ContactsQuery>,
) -> Answer {
    let (page, limit) = paging(q.page, q.limit)?;
    let status = status_filter(q.status.as_deref())?;
    let tags = tag_filter(q.tags.as_deref());
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let (Some(text), None) = (search, &q.list_id) {
        let want = ((page * limit) as usize + 1).min(1000);
        let mut found = contacts::search(&state, &user.tenant, text, want, true).await?;
        found.retain(|c| {
            status.is_none_or(|s| c.status == s) && tags.iter().all(|t| c.tags.contains(t))
        });
        let total = found.len() as u64;
        let data: Vec<Value> = found
            .iter()
            .skip(((page - 1) * limit) as usize)
            .take(limit as usize)
            .map(|c| c.view())
            .collect();
        return ok(json!({
            "data": data,
            "pagination": pagination(page, limit, Some(total), page * limit < total),
            "nextCursor": null,
        }));
    }
    let source = match &q.list_id {
        Some(id) => {
            lists::find(&state, &user.tenant, id).await?;
            Source::List(id.clone())
        }
        None => Source::Tenant,
    };
    let filters = Filters {
        status,
        tags,
        text: search.map(crate::keys::fold),
    };
    let result = contacts::list(
        &state,
        &user.tenant,
        &source,
        &filters,
        page,
        limit,
        q.cursor.as_deref(),
    )
    .await?;
    let data: Vec<Value> = result.contacts.iter().map(|c| c.view()).collect();
    ok(json!({
        "data": data,
        "pagination": pagination(result.page, result.limit, result.total, result.next_cursor.is_some()),
        "nextCursor": result.next_cursor,
    }))
}

/// `POST /v1/contacts` → 201 `{data}` (accepts `Idempotency-Key`); 409 `duplicate_phone`
/// names the contact that has the number.
pub async fn contacts_create(
    State(state): State<AppState>,
    user: AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<ContactBody>,
) -> Answer {
    let guard = idempotency::guard(&user.tenant, "contacts.create", key.as_deref(), &body)?;
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), &state).await? {
        return Ok(replay.into_response());
    }
    let result = contacts::create(&state, &user.tenant, &body, |contact| {
        guard
            .as_ref()
            .map(|g| {
                g.record(
                    &state,
                    StatusCode::CREATED,
                    &json!({ "data": contact.view() }),
                )
            })
            .into_iter()
            .collect()
    })
    .await;
    match result {
        Ok(contact) => created(json!({ "data": contact.view() })),
        Err(err) => match idempotency::replay_of(guard.as_ref(), &state).await? {
            Some(replay) => Ok(replay.into_response()),
            None => Err(err),
        },
    }
}

/// `GET /v1/contacts/{id}` → `{data}`.
pub async fn contacts_show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Answer {
    ok(json!({ "data": contacts::find(&state, &user.tenant, &id).await?.view() }))
}

/// `PUT /v1/contacts/{id}`: the whole contact (fields left out are cleared).
pub async fn contacts_replace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Answer {
    let manager = user.require(&[Role::Admin, Role::Supervisor]).is_ok();
    let contact = contacts::update(
        &state,
        &user.tenant,
        &id,
        body,
        UpdateMode::Replace,
        manager,
    )
    .await?;
    ok(json!({ "data": contact.view() }))
}

/// `PATCH /v1/contacts/{id}`: only the fields sent (`null` clears one).
pub async fn contacts_patch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Answer {
    let manager = user.require(&[Role::Admin, Role::Supervisor]).is_ok();
    let contact =
        contacts::update(&state, &user.tenant, &id, body, UpdateMode::Merge, manager).await?;
    ok(json!({ "data": contact.view() }))
}

/// `DELETE /v1/contacts/{id}` (managers).
pub async fn contacts_delete(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    Path(id): Path<String>,
) -> Answer {
    contacts::delete(&state, &user.tenant, &id).await?;
    ok(json!({ "data": { "id": id, "deleted": true } }))
}

/// `POST /v1/contacts/bulk` → per-id results (managers).
pub async fn contacts_bulk(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    JsonBody(body): JsonBody<BulkBody>,
) -> Answer {
    ok(json!({ "data": bulk::run(&state, &user.tenant, &body).await? }))
}

// ----- imports -----

/// `POST /v1/uploads/contacts` → 201 `{jobId, uploadUrl, ...}` (managers; accepts
/// `Idempotency-Key`).
pub async fn uploads_create(
    State(state): State<AppState>,
    Extension(svc): Extension<Contacts>,
    Authorized(user, _): Authorized<Managers>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<UploadBody>,
) -> Answer {
    let guard = idempotency::guard(&user.tenant, "contacts.upload", key.as_deref(), &body)?;
    if let Some(replay) = idempotency::replay_of(guard.as_ref(), &state).await? {
        return Ok(replay.into_response());
    }
    let answer = import::create(&svc, &user.tenant, &user.user_id, &body).await?;
    if let Some(guard) = &guard {
        // The presigned URL in the answer stays valid for the replay's lifetime of the key.
        vocelio_shared::dynamo::commit(
            &state.db,
            vec![guard.record(&state, StatusCode::CREATED, &answer)?],
        )
        .await?;
    }
    created(answer)
}

/// `POST /v1/uploads/contacts/{jobId}/start` → 202 `{data}` once queued; the finished job
/// (200) when it is done — a re-run imports nothing twice.
pub async fn uploads_start(
    Extension(svc): Extension<Contacts>,
    Authorized(user, _): Authorized<Managers>,
    Path(job_id): Path<String>,
) -> Answer {
    let (queued, job) = import::start(&svc, &user.tenant, &job_id).await?;
    let status = if queued
        || !matches!(
            job.status,
            import::JobStatus::Completed | import::JobStatus::Failed
        ) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "data": job.view() }))).into_response())
}

/// `GET /v1/uploads/contacts/{jobId}` → `{data: {status, totalRows, processed, imported,
/// updated, skipped, errors, errorReportUrl, ...}}` (also at the top level, as the guide
/// reads it).
pub async fn uploads_show(
    Extension(svc): Extension<Contacts>,
    user: AuthUser,
    Path(job_id): Path<String>,
) -> Answer {
    let view = import::status(&svc, &user.tenant, &job_id).await?;
    let mut body = view.clone();
    body["data"] = view;
    ok(body)
}

/// `GET /v1/uploads/contacts` → the 25 most recent jobs.
pub async fn uploads_index(State(state): State<AppState>, user: AuthUser) -> Answer {
    ok(json!({ "data": import::recent(&state, &user.tenant, 25).await? }))
}

// ----- do-not-call -----

/// `GET /v1/dnc-lists` → `{data, pagination}`.
/// Query of `GET /v1/dnc-lists`: the pagination rule of every list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DncListsQuery {
    page: Option<u64>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /v1/dnc-lists` → `{data, pagination}`, paged like the other lists.
pub async fn dnc_index(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(q): QueryParams<DncListsQuery>,
) -> Answer {
    // Without `limit`, as many as one page may hold (the app reads them all at once).
    let (page, limit) = paging(q.page, q.limit.or(Some(100)))?;
    if q.cursor.as_deref().is_some_and(|c| !c.trim().is_empty()) {
        // This list pages by number; it never hands out a cursor.
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "this list is paged with page and limit; it has no cursors",
        ));
    }
    let lists = dnc::all_lists(&state, &user.tenant).await?;
    let total = lists.len() as u64;
    let data: Vec<_> = lists
        .into_iter()
        .skip(((page - 1) * limit) as usize)
        .take(limit as usize)
        .collect();
    ok(json!({
        "data": data,
        "pagination": pagination(page, limit, Some(total), page * limit < total),
        "nextCursor": null,
    }))
}

/// `POST /v1/dnc-lists` → 201 `{data}` (managers).
pub async fn dnc_create(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    JsonBody(body): JsonBody<DncListBody>,
) -> Answer {
    created(json!({ "data": dnc::create_list(&state, &user.tenant, &body).await? }))
}

/// `GET /v1/dnc-lists/{id}` → `{data}`.
pub async fn dnc_show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Answer {
    ok(json!({ "data": dnc::find_list(&state, &user.tenant, &id).await? }))
}

/// Query of `GET /v1/dnc-lists/{id}/entries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /v1/dnc-lists/{id}/entries` → `{data, nextCursor}`.
pub async fn dnc_entries(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<EntriesQuery>,
) -> Answer {
    let limit = vocelio_shared::dynamo::page_limit(q.limit, 100, 1000)?;
    let (entries, next) =
        dnc::entries(&state, &user.tenant, &id, limit, q.cursor.as_deref()).await?;
    ok(json!({ "data": entries, "nextCursor": next }))
}

/// `POST /v1/dnc-lists/{id}/entries {phones}` → what was added (managers).
pub async fn dnc_add(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EntriesBody>,
) -> Answer {
    let outcome = dnc::add_entries(&state, &user.tenant, &user.user_id, &id, &body).await?;
    let list = dnc::find_list(&state, &user.tenant, &id).await?;
    ok(
        json!({ "data": { "list": list, "added": outcome.added, "alreadyListed": outcome.already_listed, "invalid": outcome.invalid, "contactsMarked": outcome.contacts_marked } }),
    )
}

/// `DELETE /v1/dnc-lists/{id}/entries/{phone}` (managers).
pub async fn dnc_remove(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
    Path((id, phone)): Path<(String, String)>,
) -> Answer {
    let e164 = dnc::remove_entry(&state, &user.tenant, &id, &phone).await?;
    ok(json!({ "data": { "listId": id, "phone": e164, "removed": true } }))
}

/// `POST /v1/dnc/scrub {listId | phones, markContacts?}`.
pub async fn dnc_scrub(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<ScrubBody>,
) -> Answer {
    if body.mark_contacts {
        user.require(&[
            vocelio_shared::Role::Admin,
            vocelio_shared::Role::Supervisor,
        ])?;
    }
    ok(json!({ "data": dnc::scrub(&state, &user.tenant, &body).await? }))
}

/// Query of `GET /v1/dnc/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    phone: String,
}

/// `GET /v1/dnc/check?phone=` → `{data: {phone, blocked, lists}}`: the one GetItem every
/// dialler makes.
pub async fn dnc_check(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(q): QueryParams<CheckQuery>,
) -> Answer {
    let e164 = vocelio_shared::phone::normalize(&q.phone, state.config.default_phone_region)
        .map_err(|why| ApiError::field("phone", format!("phone number {why}")))?;
    let lists = vocelio_shared::dnc::lists_blocking(&state, &user.tenant, e164.as_str()).await?;
    ok(json!({ "data": { "phone": e164.as_str(), "blocked": !lists.is_empty(), "lists": lists } }))
}

// ----- the deployed app's reads -----

/// `GET /api/contacts/lists` → a bare array of `{id, name, description, contactCount,
/// lastUpdated, tags}` (active lists).
pub async fn app_lists(State(state): State<AppState>, user: AuthUser) -> Answer {
    let lists: Vec<Value> = lists::all(&state, &user.tenant)
        .await?
        .into_iter()
        .filter(|l| l.status == ListStatus::Active)
        .map(|l| {
            json!({
                "id": l.id, "name": l.name, "description": l.description.unwrap_or_default(),
                "contactCount": l.contact_count, "lastUpdated": l.updated_at, "tags": l.tags,
            })
        })
        .collect();
    ok(Value::Array(lists))
}

/// Query of `GET /api/contacts/lists/{id}/contacts`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppListQuery {
    page: Option<u64>,
    limit: Option<u64>,
    search: Option<String>,
    status: Option<String>,
    phone_filter: Option<String>,
}

fn app_contact(c: &crate::model::Contact) -> Value {
    json!({
        "id": c.id, "firstName": c.first_name, "lastName": c.last_name.clone().unwrap_or_default(),
        "phone": c.phone, "phoneType": c.phone_type.as_str(), "email": c.email.clone().unwrap_or_default(),
        "status": c.status.as_str(), "customFields": c.custom_fields,
    })
}

/// `GET /api/contacts/lists/{id}/contacts` → `{contacts, currentPage, totalPages, totalCount,
/// hasMore}`.
pub async fn app_list_contacts(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<AppListQuery>,
) -> Answer {
    let (page, limit) = paging(q.page, q.limit)?;
    lists::find(&state, &user.tenant, &id).await?;
    let text = [q.search.as_deref(), q.phone_filter.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|t| !t.is_empty())
        .map(crate::keys::fold);
    let filters = Filters {
        status: status_filter(q.status.as_deref())?,
        tags: Vec::new(),
        text,
    };
    let result = contacts::list(
        &state,
        &user.tenant,
        &Source::List(id),
        &filters,
        page,
        limit,
        None,
    )
    .await?;
    let total = result
        .total
        .unwrap_or((page - 1) * limit + result.contacts.len() as u64);
    ok(json!({
        "contacts": result.contacts.iter().map(app_contact).collect::<Vec<_>>(),
        "currentPage": page,
        "totalPages": total.div_ceil(limit),
        "totalCount": total,
        "hasMore": result.next_cursor.is_some(),
    }))
}

/// Query of `GET /api/contacts/search`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSearchQuery {
    q: Option<String>,
    limit: Option<u64>,
    #[serde(default)]
    include_inactive: bool,
}

/// `GET /api/contacts/search?q&limit&includeInactive` → `{contacts, total, query}`.
pub async fn app_search(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(q): QueryParams<AppSearchQuery>,
) -> Answer {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 100"));
    }
    let text = q.q.unwrap_or_default();
    let found = contacts::search(
        &state,
        &user.tenant,
        &text,
        limit as usize,
        q.include_inactive,
    )
    .await?;
    ok(json!({
        "contacts": found.iter().map(|c| c.view()).collect::<Vec<_>>(),
        "total": found.len(),
        "query": text,
    }))
}
