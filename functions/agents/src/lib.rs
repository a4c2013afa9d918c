//! The agents function: register agents, list and read them, change their status,
//! deregister them.
//! Canonical paths under `/api`, the guide's unprefixed paths as aliases.

use axum::Router;
use axum::routing::{get, post, put};
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod domain;
mod handlers;
pub mod repo;

/// The function's name, as in `/health/agents`.
pub const SERVICE: &str = "agents";

/// The API routes (no health, no middleware): mounted at `/api` and again unprefixed.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/agents", get(handlers::list))
        .route("/agents/register", post(handlers::register))
        .route(
            "/agents/{agent_id}",
            get(handlers::get_one).delete(handlers::deregister),
        )
        .route("/agents/{agent_id}/status", put(handlers::change_status));
    Router::new().nest("/api", api.clone()).merge(api)
}

/// The finished service, as Lambda and `cargo lambda watch` run it.
pub fn router(state: AppState) -> Router {
    finish(
        routes().merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}
