//! Lambda entry point of the import worker: S3 object-created notifications of uploads and
//! of the import queue. Each invocation imports until shortly before its deadline, then
//! checkpoints and queues the rest for the next invocation.

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};

/// Time kept back from the invocation's deadline for the last transaction and the hand-over.
const HEADROOM: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (_state, contacts) = contacts::from_env().await?;
    let contacts = &contacts;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let configured = Duration::from_secs(contacts.config.import_budget_seconds);
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(HEADROOM);
            let budget = configured.min(left).max(Duration::from_secs(1));
            let report = contacts::import::handle_s3_event(contacts, &event.payload, budget)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(serde_json::to_value(report).unwrap_or_default())
        },
    ))
    .await
}
