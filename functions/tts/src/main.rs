//! Lambda entry point of the TTS API (HTTP API routes).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (state, tts) = tts::service::from_env().await?;
    lambda_http::run(tts::router(state, tts)).await
}
