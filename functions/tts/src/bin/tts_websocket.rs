//! Lambda entry point of `/ws/tts`: API Gateway WebSocket events (`$connect`, `$disconnect`,
//! `$default`) of the TTS WebSocket API.

use lambda_http::lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = vocelio_shared::state::load_sdk_config().await;
    let (state, tts) = tts::service::from_env().await?;
    let socket = tts::ws::TtsSocket::new(state, tts, &sdk);
    let socket = &socket;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(socket.handle(event.payload).await)
    }))
    .await
}
