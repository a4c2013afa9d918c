//! Lambda entry point of the timer sweeper, invoked by an EventBridge schedule.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = vocelio_shared::AppState::from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let swept = transfers::sweeper::sweep(state)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(?swept, "sweep done");
            Ok::<_, String>(serde_json::to_value(swept).unwrap_or_default())
        },
    ))
    .await
}
