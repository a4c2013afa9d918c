//! Text to speech: voice tiers, Azure Speech / ElevenLabs / local (espeak-ng) providers behind
//! one trait, audio cached in S3 under content-addressed keys, whole-clip and streamed
//! synthesis, usage per call and customer.

use axum::Router;
use axum::extract::Extension;
use axum::routing::{get, post};
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod audio;
pub mod azure;
pub mod cache;
pub mod config;
pub mod elevenlabs;
pub mod formats;
mod handlers;
pub mod local;
pub mod local_engine;
pub mod provider;
pub mod service;
pub mod ssml;
pub mod store;
pub mod usage;
pub mod wav;
pub mod ws;

pub use handlers::PREVIEW_TEXT;
pub use service::Tts;

/// The function's name, as in `/health/tts`.
pub const SERVICE: &str = "tts";

/// The API routes (no health, no middleware), served by `tts`.
pub fn routes(tts: Tts) -> Router<AppState> {
    Router::new()
        .route("/tiers", get(handlers::tiers))
        .route("/voices/{provider}", get(handlers::voices))
        .route("/voices/preview/{voice_id}", get(handlers::preview))
        .route("/synthesize", post(handlers::synthesize))
        .route("/usage/{scope}/{id}", get(handlers::usage_totals))
        .merge(stream_routes())
        .layer(Extension(tts))
}

/// The streaming route (a function URL with response streaming on AWS).
fn stream_routes() -> Router<AppState> {
    Router::new().route("/stream/synthesize", post(handlers::stream_synthesize))
}

/// The finished service, as Lambda and `cargo lambda watch` run it.
pub fn router(state: AppState, tts: Tts) -> Router {
    finish(
        routes(tts).merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}
