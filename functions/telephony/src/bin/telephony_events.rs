//! Lambda entry point of the event-log stream consumer (the phone side of transfers).
#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (_state, tel) = telephony::from_env().await?;
    let tel = &tel;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // The one-minute schedule (EventBridge) runs the reconciler; everything else is
            // a batch of the event log's stream.
            if event.payload["detail-type"] == "Scheduled Event" {
                let done = telephony::reconcile::reconcile(tel)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok::<_, String>(serde_json::to_value(done).unwrap_or_default());
            }
            let report = telephony::events::handle_batch(tel, &event.payload)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(serde_json::to_value(report).unwrap_or_default())
        },
    ))
    .await
}
