//! Real-time delivery. This release: Server-Sent Events that follow the tenant's event log
//! (the app's `EventSource` screens). On AWS they run as a Lambda function URL with response
//! streaming; locally on the same URL as every other route.

use axum::Router;
use axum::routing::get;
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod log;
pub mod messages;
pub mod sse;

/// The function's name, as in `/health/realtime`.
pub const SERVICE: &str = "realtime";

/// The SSE routes (no health, no middleware).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/calls/active/events", get(sse::active_events))
        .route("/api/calls/events", get(sse::active_events))
        .route("/api/calls/{call_id}/events", get(sse::call_events))
}

/// The finished service, as the streaming Lambda runs it.
pub fn router(state: AppState) -> Router {
    finish(
        routes().merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}
