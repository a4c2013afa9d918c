//! Lambda entry point of the departments function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let state = vocelio_shared::AppState::from_env().await?;
    lambda_http::run(departments::router(state)).await
}
