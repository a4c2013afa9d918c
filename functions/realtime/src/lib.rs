//! Real-time delivery of the tenant's event log.
//!
//! - Server-Sent Events ([`sse`]): the app's `EventSource` screens; on AWS a Lambda function
//!   URL with response streaming, locally on the same URL as every other route.
//! - WebSocket ([`websocket`], [`fanout`]): API Gateway's WebSocket API invokes the
//!   `websocket` binary for `$connect` / `$disconnect` / `$default`; DynamoDB Streams on the
//!   core table invoke the same binary with new events, which it sends to the matching
//!   subscribers through the management API (`PostToConnection`).

use axum::Router;
use axum::routing::get;
use vocelio_shared::AppState;
use vocelio_shared::config::ConfigError;
use vocelio_shared::http::{finish, health_routes};

pub mod channels;
pub mod connections;
pub mod delivery;
pub mod fanout;
pub mod log;
pub mod messages;
pub mod sse;
pub mod websocket;

/// The function's name, as in `/health/realtime`.
pub const SERVICE: &str = "realtime";

/// The SSE routes (no health, no middleware).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/calls/active/events", get(sse::active_events))
        .route("/api/calls/events", get(sse::active_events))
        .route("/api/calls/{call_id}/events", get(sse::call_events))
}

/// The finished SSE service, as the streaming Lambda runs it.
pub fn router(state: AppState) -> Router {
    finish(
        routes().merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}

/// What the WebSocket and fan-out handlers share: the app state (core table, tokens), the
/// connections table and the management API clients.
#[derive(Debug, Clone)]
pub struct Realtime {
    /// Configuration, the core table, token keys.
    pub app: AppState,
    /// The connections table.
    pub connections: connections::ConnectionStore,
    /// `PostToConnection` clients.
    pub poster: delivery::Poster,
}

impl Realtime {
    /// Built from the app state and the AWS SDK configuration; needs `CONNECTIONS_TABLE`.
    pub fn new(app: AppState, sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = app.config.connections_table.clone().ok_or(ConfigError {
            variable: "CONNECTIONS_TABLE",
            problem: "is not set (the WebSocket connections table)".into(),
        })?;
        Ok(Self {
            connections: connections::ConnectionStore::new(app.db.clone(), table),
            poster: delivery::Poster::new(sdk.clone()),
            app,
        })
    }
}
