//! Lambda entry point of the WebSocket function: API Gateway WebSocket events
//! (`$connect`, `$disconnect`, `$default`) and DynamoDB Streams batches from the event log.

use lambda_http::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = vocelio_shared::state::load_sdk_config().await;
    let config = vocelio_shared::config::Config::from_env()?;
    let app = vocelio_shared::AppState::new(config, &sdk);
    let realtime = realtime::Realtime::new(app, &sdk)?;
    let realtime = &realtime;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        realtime::fanout::dispatch(realtime, event.payload)
            .await
            .map_err(|e| Error::from(e.to_string()))
    }))
    .await
}
