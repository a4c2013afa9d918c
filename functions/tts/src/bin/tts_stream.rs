//! Lambda entry point of streamed synthesis: a function URL with `InvokeMode: RESPONSE_STREAM`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (state, tts) = tts::service::from_env().await?;
    lambda_http::run_with_streaming_response(tts::router(state, tts)).await
}
