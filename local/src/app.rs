//! Every function's router merged into one service, exactly as each runs on Lambda.

use axum::Router;
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes_for};

/// The functions served by the local stack: `(name, version)`.
pub const SERVICES: [(&str, &str); 2] = [
    (departments::SERVICE, env!("CARGO_PKG_VERSION")),
    (agents::SERVICE, env!("CARGO_PKG_VERSION")),
];

/// All routes on one router: what API Gateway fronts on AWS.
pub fn app(state: AppState) -> Router {
    let routes = departments::routes()
        .merge(agents::routes())
        .merge(health_routes_for("/health", &SERVICES));
    finish(routes, state)
}
