//! Lambda entry point of Twilio's webhooks (a function URL).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let (state, tel) = telephony::from_env().await?;
    lambda_http::run(telephony::webhook_router(state, tel)).await
}
