//! Lambda entry point of the accounts function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (state, accounts) = accounts::from_env().await?;
    lambda_http::run(accounts::router(state, accounts)).await
}
