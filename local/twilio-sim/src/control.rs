//! The simulator's own endpoints under `/__sim` (for people, tests and the frontend; CORS
//! open): simulate inbound calls and hang-ups, inspect calls, conferences, accounts, numbers
//! and webhooks, inject REST failures, and a stand-in AI-agent webhook.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::Simulator;
use crate::state::Shared;

/// The `/__sim` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sim/inbound", post(inbound))
        .route("/__sim/calls", get(calls))
        .route("/__sim/calls/{sid}", get(call))
        .route("/__sim/calls/{sid}/hangup", post(hangup))
        .route("/__sim/conferences", get(conferences))
        .route("/__sim/accounts", get(accounts))
        .route("/__sim/numbers", get(numbers))
        .route("/__sim/callbacks", get(callbacks))
        .route("/__sim/fail", post(fail))
        .route("/__sim/agent", get(agent).post(agent))
        .layer(tower_http::cors::CorsLayer::permissive())
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

#[derive(Debug, Deserialize)]
struct InboundRequest {
    from: String,
    to: String,
    #[serde(default)]
    url: Option<String>,
}

async fn inbound(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<InboundRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let sim = Simulator::from_shared(shared);
    match sim.start_inbound(&request.from, &request.to, request.url.as_deref()) {
        Ok(call_sid) => {
            (StatusCode::CREATED, Json(json!({ "call_sid": call_sid }))).into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn calls(State(shared): State<Arc<Shared>>) -> Response {
    Json(Simulator::from_shared(shared).calls()).into_response()
}

async fn call(State(shared): State<Arc<Shared>>, Path(sid): Path<String>) -> Response {
    match Simulator::from_shared(shared).call(&sid) {
        Some(call) => Json(call).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no call {sid}")),
    }
}

async fn hangup(State(shared): State<Arc<Shared>>, Path(sid): Path<String>) -> Response {
    let sim = Simulator::from_shared(shared);
    if sim.hangup(&sid) {
        Json(sim.call(&sid)).into_response()
    } else if sim.call(&sid).is_some() {
        error(StatusCode::CONFLICT, format!("call {sid} is already over"))
    } else {
        error(StatusCode::NOT_FOUND, format!("no call {sid}"))
    }
}

async fn conferences(State(shared): State<Arc<Shared>>) -> Response {
    Json(Simulator::from_shared(shared).conferences()).into_response()
}

async fn accounts(State(shared): State<Arc<Shared>>) -> Response {
    Json(Simulator::from_shared(shared).accounts()).into_response()
}

async fn numbers(State(shared): State<Arc<Shared>>) -> Response {
    Json(Simulator::from_shared(shared).numbers()).into_response()
}

async fn callbacks(State(shared): State<Arc<Shared>>) -> Response {
    Json(Simulator::from_shared(shared).callbacks()).into_response()
}

#[derive(Debug, Deserialize)]
struct FailRequest {
    status: u16,
    code: u32,
    message: String,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

async fn fail(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<FailRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(request)) if (400..=599).contains(&request.status) => {
            Simulator::from_shared(shared).fail_next(
                request.status,
                request.code,
                &request.message,
                request.count,
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => error(
            StatusCode::BAD_REQUEST,
            "status must be an HTTP error status (400-599)",
        ),
        Err(rejection) => error(StatusCode::BAD_REQUEST, rejection.body_text()),
    }
}

#[derive(Debug, Deserialize)]
struct AgentQuery {
    #[serde(default)]
    seconds: Option<String>,
}

/// The longest `/__sim/agent` conversation, simulated seconds.
pub(crate) const MAX_AGENT_SECONDS: u32 = 3600;

/// Stand-in for an AI agent's conversation webhook: keeps the call live `seconds`.
async fn agent(Query(query): Query<AgentQuery>) -> Response {
    let seconds = match query.seconds.as_deref().map(str::parse::<u32>) {
        None => 60,
        Some(Ok(seconds)) => seconds.min(MAX_AGENT_SECONDS),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "seconds must be a whole number of seconds",
            );
        }
    };
    (
        [(header::CONTENT_TYPE, "text/xml")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>This is the local AI agent stand-in.</Say><Pause length=\"{seconds}\"/></Response>"
        ),
    )
        .into_response()
}
