//! Every function's router merged into one service, exactly as each runs on Lambda.

use axum::Router;
use realtime::Realtime;
use vocelio_shared::AppState;

use crate::gateway::LocalGateway;
use vocelio_shared::http::{finish, health_routes_for};

/// The functions served by the local stack: `(name, version)`.
pub const SERVICES: [(&str, &str); 6] = [
    (departments::SERVICE, env!("CARGO_PKG_VERSION")),
    (agents::SERVICE, env!("CARGO_PKG_VERSION")),
    (transfers::SERVICE, env!("CARGO_PKG_VERSION")),
    (realtime::SERVICE, env!("CARGO_PKG_VERSION")),
    (tts::SERVICE, env!("CARGO_PKG_VERSION")),
    (telephony::SERVICE, env!("CARGO_PKG_VERSION")),
];

/// All routes on one router: what API Gateway fronts on AWS (the HTTP API, the SSE
/// function URL, and the WebSocket API with its management endpoint).
pub fn app(
    state: AppState,
    gateway: &LocalGateway,
    tts: tts::Tts,
    telephony: telephony::Telephony,
) -> Router {
    let routes = departments::routes()
        .merge(agents::routes())
        .merge(transfers::routes())
        .merge(realtime::routes())
        .merge(tts::routes(tts))
        .merge(telephony::routes(telephony.clone()))
        .merge(telephony::webhook_routes(telephony))
        .merge(health_routes_for("/health", &SERVICES));
    finish(routes, state).merge(gateway.routes())
}

/// Follows the core table's stream and runs the realtime fan-out and the telephony
/// consumer, as the event source mappings do on AWS; stops when the returned handle is
/// aborted.
pub fn spawn_stream_follower(
    realtime: Realtime,
    telephony: Option<telephony::Telephony>,
    dynamodb_url: &str,
    table: &str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crate::streams::follow(
        realtime,
        telephony,
        dynamodb_url.to_owned(),
        table.to_owned(),
    ))
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
