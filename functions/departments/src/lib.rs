//! The departments function: create, list, read, update and (soft-)delete a tenant's
//! departments. Canonical paths under `/api`, the guide's unprefixed paths as aliases.

use axum::Router;
use axum::routing::get;
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod domain;
mod handlers;
pub mod repo;

/// The function's name, as in `/health/departments`.
pub const SERVICE: &str = "departments";

/// The API routes (no health, no middleware): mounted at `/api` and again unprefixed.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/departments", get(handlers::list).post(handlers::create))
        .route(
            "/departments/{id}",
            get(handlers::get_one)
                .put(handlers::update)
                .delete(handlers::delete),
        );
    Router::new().nest("/api", api.clone()).merge(api)
}

/// The finished service, as Lambda and `cargo lambda watch` run it.
pub fn router(state: AppState) -> Router {
    finish(
        routes().merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}
