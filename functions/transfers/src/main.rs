//! Lambda entry point of the call-transfer service.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let state = vocelio_shared::AppState::from_env().await?;
    lambda_http::run(transfers::router(state)).await
}
