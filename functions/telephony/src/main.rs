//! Lambda entry point of the telephony JSON API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (state, tel) = telephony::from_env().await?;
    lambda_http::run(telephony::router(state, tel)).await
}
