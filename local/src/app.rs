//! Every function's router merged into one service, exactly as each runs on Lambda.

use axum::Router;
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes_for};

/// The functions served by the local stack: `(name, version)`.
pub const SERVICES: [(&str, &str); 4] = [
    (departments::SERVICE, env!("CARGO_PKG_VERSION")),
    (agents::SERVICE, env!("CARGO_PKG_VERSION")),
    (transfers::SERVICE, env!("CARGO_PKG_VERSION")),
    (realtime::SERVICE, env!("CARGO_PKG_VERSION")),
];

/// All routes on one router: what API Gateway fronts on AWS.
pub fn app(state: AppState) -> Router {
    let routes = departments::routes()
        .merge(agents::routes())
        .merge(transfers::routes())
        .merge(realtime::routes())
        .merge(health_routes_for("/health", &SERVICES));
    finish(routes, state)
}

/// Runs the transfer timers (offer timeouts, wrap-up ends) every `every`, as the scheduled
/// sweeper function does on AWS; stops when the returned handle is dropped or aborted.
pub fn spawn_sweeper(state: AppState, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match transfers::sweeper::sweep(&state).await {
                Ok(swept) if swept.offers_expired + swept.wrap_ups_ended > 0 => {
                    tracing::info!(?swept, "timers swept");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "sweep failed"),
            }
        }
    })
}
