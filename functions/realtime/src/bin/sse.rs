//! Lambda entry point of the SSE function: a function URL with `InvokeMode: RESPONSE_STREAM`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let state = vocelio_shared::AppState::from_env().await?;
    lambda_http::run_with_streaming_response(realtime::router(state)).await
}
