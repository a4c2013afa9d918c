//! Lambda entry point of the contacts API (HTTP API routes).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (state, contacts) = contacts::from_env().await?;
    lambda_http::run(contacts::router(state, contacts)).await
}
