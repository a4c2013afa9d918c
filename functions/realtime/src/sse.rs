//! Server-Sent Events for the app's `EventSource`s. A stream follows the tenant's event log
//! from the client's `Last-Event-ID` (or from now), sends each matching event as a default
//! `message` whose `id:` is the log's event id — so a reconnect resumes exactly where it
//! stopped — sends comment heartbeats, and ends before the function's time limit (the
//! browser reconnects by itself).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::extract::QueryParams;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, clock, ids};

use crate::log::{LogEvent, events_after, is_event_id, position_at};
use crate::messages::{call_message, call_update};

/// `?token=&last_event_id=` (EventSource cannot send headers; `Last-Event-ID` is also read).
#[derive(Debug, Deserialize)]
pub struct StreamParams {
    token: Option<String>,
    last_event_id: Option<String>,
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &StreamParams,
) -> ApiResult<AuthUser> {
    let bearer = vocelio_shared::auth::bearer(headers);
    let token = params
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .or(bearer)
        .ok_or_else(|| {
            ApiError::Unauthorized("pass the access token as the token query parameter".into())
        })?;
    vocelio_shared::auth::authorize_stream(state, token, "/api/calls/events").await
}

fn resume_point(headers: &HeaderMap, params: &StreamParams) -> ApiResult<String> {
    let sent = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(params.last_event_id.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match sent {
        Some(id) if is_event_id(id) => Ok(id.to_owned()),
        Some(_) => Err(ApiError::bad_request(
            "invalid_last_event_id",
            "Last-Event-ID is not an id this stream sent",
        )),
        None => Ok(position_at(clock::now())),
    }
}

/// What a stream sends for a batch of new log events.
type Select = Box<dyn Fn(&[LogEvent]) -> Vec<(Option<String>, Value)> + Send + Sync>;

struct Follow {
    state: AppState,
    tenant: TenantId,
    cursor: String,
    pending: VecDeque<Event>,
    select: Select,
    /// This stream sends `active_calls_update` snapshots (at connect and after changes).
    snapshots: bool,
    snapshot_due: bool,
    deadline: tokio::time::Instant,
    poll: Duration,
    failures: u32,
}

fn message(id: Option<String>, data: &Value) -> Event {
    let event = Event::default().data(data.to_string());
    match id {
        Some(id) => event.id(id),
        None => event,
    }
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if tokio::time::Instant::now() >= self.deadline {
                return None;
            }
            if self.snapshot_due {
                self.snapshot_due = false;
                match active_snapshot(&self.state, &self.tenant).await {
                    Ok(data) => self.pending.push_back(message(None, &data)),
                    Err(err) => tracing::warn!(error = %err, "sse: snapshot failed"),
                }
                continue;
            }
            tokio::time::sleep(self.poll).await;
            match events_after(&self.state, &self.tenant, &self.cursor, 100).await {
                Ok(events) => {
                    self.failures = 0;
                    if let Some(last) = events.last() {
                        self.cursor = last.event_id.clone();
                    }
                    let selected = (self.select)(&events);
                    self.snapshot_due = self.snapshots && !selected.is_empty();
                    for (id, data) in selected {
                        self.pending.push_back(message(id, &data));
                    }
                }
                Err(err) => {
                    self.failures += 1;
                    tracing::warn!(error = %err, failures = self.failures, "sse: reading the event log failed");
                    if self.failures >= 5 {
                        // The client reconnects with its Last-Event-ID and misses nothing.
                        return None;
                    }
                }
            }
        }
    }
}

fn follow(
    state: AppState,
    tenant: TenantId,
    cursor: String,
    select: Select,
    snapshots: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let config = state.config.clone();
    let start = Follow {
        state,
        tenant,
        cursor,
        pending: VecDeque::from([Event::default().retry(Duration::from_millis(1000))]),
        select,
        snapshots,
        snapshot_due: snapshots,
        deadline: tokio::time::Instant::now()
            + Duration::from_secs(u64::from(config.sse_max_seconds)),
        poll: Duration::from_millis(u64::from(config.sse_poll_millis)),
        failures: 0,
    };
    futures_util::stream::unfold(start, Follow::next)
}

fn sse(
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> impl IntoResponse {
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("heartbeat"),
    )
}

/// `GET /api/calls/{call_id}/events`: one call's status and transfer events.
pub async fn call_events(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<StreamParams>,
) -> ApiResult<impl IntoResponse> {
    let user = authenticate(&state, &headers, &params).await?;
    let cursor = resume_point(&headers, &params)?;
    if !ids::is_key_safe(&call_id) {
        return Err(ApiError::not_found("call"));
    }
    transfers::store::Store::new(&state, &user.tenant)
        .call(&call_id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    let select: Select = Box::new(move |events| {
        events
            .iter()
            .filter(|e| crate::messages::call_of(e) == Some(call_id.as_str()))
            .filter_map(|e| call_message(e).map(|m| (Some(e.event_id.clone()), m)))
            .collect()
    });
    Ok(sse(follow(state, user.tenant, cursor, select, false)))
}

/// `GET /api/calls/active/events` and `GET /api/calls/events`: a `call_update` per call event
/// and an `active_calls_update` snapshot (first at connect, then after each batch of changes).
pub async fn active_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<StreamParams>,
) -> ApiResult<impl IntoResponse> {
    let user = authenticate(&state, &headers, &params).await?;
    let cursor = resume_point(&headers, &params)?;
    let select: Select = Box::new(|events| {
        events
            .iter()
            .filter_map(|e| call_update(e).map(|m| (Some(e.event_id.clone()), m)))
            .collect()
    });
    Ok(sse(follow(state, user.tenant, cursor, select, true)))
}

/// The `active_calls_update` message: the same rows as `GET /api/calls/active`.
pub async fn active_snapshot(state: &AppState, tenant: &TenantId) -> ApiResult<Value> {
    let rows = transfers::active_call_rows(state, tenant).await?;
    Ok(
        json!({ "type": "active_calls_update", "active_calls": rows, "timestamp": clock::rfc3339(clock::now()) }),
    )
}
