//! The telephony adapter over Twilio: outbound calls with spoken messages (our TTS voices
//! as `<Play>` of S3 audio, else `<Say>`), inbound calls answered from call flows, status
//! callbacks that keep each call record current (never backwards, never twice), ending,
//! muting and holding calls, cold transfers to numbers and department transfers through
//! the transfer service's routing and a conference, and the signed webhooks Twilio calls.
//!
//! Three Lambda functions share this library: the JSON API (`telephony`), the webhooks on a
//! function URL (`telephony-webhooks`) and the consumer of the event log's stream that
//! dials the phone side of transfers (`telephony-events`).

use axum::Router;
use axum::extract::Extension;
use axum::routing::{get, post};
use vocelio_shared::AppState;
use vocelio_shared::http::{finish, health_routes};

pub mod accounts;
pub mod callback;
pub mod calls;
pub mod client;
pub mod config;
pub mod events;
pub mod flows;
mod handlers;
pub mod numbers;
pub mod policy;
pub mod reconcile;
pub mod seal;
pub mod secrets;
pub mod service;
pub mod signature;
pub mod store;
pub mod transfer;
pub mod twilio_error;
pub mod twiml;
pub mod webhooks;

pub use service::Telephony;

/// The function's name, as in `/health/telephony`.
pub const SERVICE: &str = "telephony";

/// The JSON API routes (no health, no middleware).
pub fn routes(tel: Telephony) -> Router<AppState> {
    Router::new()
        .route("/api/calls/make", post(handlers::make_call))
        .route("/api/calls/{call_id}/status", get(handlers::call_status))
        .route("/api/calls/{call_id}/end", post(handlers::end_call))
        .route(
            "/api/calls/{call_id}",
            axum::routing::delete(handlers::end_call),
        )
        .route("/api/calls/{call_id}/mute", post(handlers::mute))
        .route("/api/calls/{call_id}/hold", post(handlers::hold))
        .route(
            "/api/calls/{call_id}/transfer",
            post(handlers::transfer_call),
        )
        .route("/calls/transfer", post(handlers::transfer_guide))
        .route("/admin/active-calls", get(handlers::active_calls))
        .route("/admin/register-flow", post(handlers::register_flow))
        .route(
            "/admin/unregister-flow",
            post(handlers::unregister_flow).delete(handlers::unregister_flow),
        )
        .route("/api/numbers/search", get(handlers::search_numbers))
        .route("/api/numbers/buy", post(handlers::buy_number))
        .route("/api/numbers", get(handlers::list_numbers))
        .route("/numbers", get(handlers::list_numbers))
        .route(
            "/api/numbers/{sid}",
            axum::routing::delete(handlers::release_number),
        )
        .route(
            "/api/numbers/{sid}/release",
            axum::routing::delete(handlers::release_number).post(handlers::release_number),
        )
        .route(
            "/api/telephony/policy",
            get(handlers::get_policy).put(handlers::put_policy),
        )
        .route("/api/telephony/identity", get(handlers::identity))
        .layer(Extension(tel))
}

/// Twilio's webhook routes (`/twilio/...`), verified by signature instead of a JWT.
pub fn webhook_routes(tel: Telephony) -> Router<AppState> {
    webhooks::routes().with_state(tel)
}

/// The finished JSON API, as Lambda runs it.
pub fn router(state: AppState, tel: Telephony) -> Router {
    finish(
        routes(tel).merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}

/// The finished webhook function, as Lambda runs it behind its function URL.
pub fn webhook_router(state: AppState, tel: Telephony) -> Router {
    finish(
        webhook_routes(tel).merge(health_routes(SERVICE, env!("CARGO_PKG_VERSION"))),
        state,
    )
}

/// The cold-start path of the three functions: shared state, telephony settings, and the
/// TTS service when its bucket is configured (messages are then spoken by our voices).
pub async fn from_env() -> Result<(AppState, Telephony), Box<dyn std::error::Error + Send + Sync>> {
    let secrets = secrets::resolve_from_env().await?;
    let config = config::TelephonyConfig::from_source(&move |name: &str| {
        secrets
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    })?;
    let speech = if std::env::var_os("AUDIO_BUCKET").is_some() {
        Some(tts::service::from_env().await?)
    } else {
        None
    };
    let (state, tts) = match speech {
        Some((state, tts)) => (state, Some(tts)),
        None => (AppState::from_env().await?, None),
    };
    let tel = Telephony::new(state.clone(), config, tts)?;
    Ok((state, tel))
}
