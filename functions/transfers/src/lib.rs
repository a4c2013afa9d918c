//! The call-transfer service: calls, transfers routed to agents or department queues,
//! offers and their timeouts, queues, call logs, transfer history and analytics.
//! Canonical paths as the app calls them, the guide's paths as aliases.

use axum::Router;
use axum::routing::{get, post};
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod analytics;
pub mod dashboard;
pub mod engine;
mod handlers;
pub mod model;
pub mod requests;
pub mod store;
pub mod sweeper;

/// The function's name, as in `/health/transfers`.
pub const SERVICE: &str = "transfers";

/// The API routes (no health, no middleware).
pub fn routes() -> Router<AppState> {
    let transfer_actions = Router::new()
        .route("/{id}", get(handlers::get_transfer))
        .route("/{id}/accept", post(handlers::accept))
        .route("/{id}/decline", post(handlers::decline))
        .route("/{id}/complete", post(handlers::complete))
        .route("/{id}/cancel", post(handlers::cancel));
    let shared = Router::new()
        .route("/transfer/request", post(handlers::request_transfer_guide))
        .route(
            "/call/{call_id}/transfer-history",
            get(handlers::transfer_history),
        )
        .route("/departments/{id}/queue", get(handlers::department_queue))
        .route("/queue/status", get(handlers::queue_status))
        .route("/analytics/transfers", get(analytics::transfers))
        .route("/call-logs", get(handlers::call_logs));
    let api_only = Router::new()
        .route("/calls", post(handlers::create_call))
        .route("/calls/active", get(handlers::active_calls))
        .route("/calls/logs", get(handlers::call_logs))
        .route("/calls/transfer", post(handlers::request_transfer))
        .route(
            "/calls/{call_id}",
            get(handlers::get_call).patch(handlers::update_call),
        )
        .nest("/transfers", transfer_actions.clone());
    Router::new()
        .nest("/api", api_only.merge(shared.clone()))
        .merge(shared)
        .nest("/transfer", transfer_actions)
}

/// The finished service, as Lambda and `cargo lambda watch` run it.
pub fn router(state: AppState) -> Router {
    finish(
        routes().merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}

/// The rows of `GET /api/calls/active` for `tenant` (also the SSE `active_calls_update`).
pub async fn active_call_rows(
    state: &AppState,
    tenant: &vocelio_shared::ids::TenantId,
) -> vocelio_shared::ApiResult<Vec<serde_json::Value>> {
    handlers::active_rows(state, tenant).await
}
