//! Every function's router merged into one service, exactly as each runs on Lambda.

use axum::Router;
use realtime::Realtime;
use vocelio_shared::AppState;

use crate::gateway::LocalGateway;
use vocelio_shared::http::{finish, health_routes_for};

/// The functions served by the local stack: `(name, version)`.
pub const SERVICES: [(&str, &str); 8] = [
    (accounts::SERVICE, env!("CARGO_PKG_VERSION")),
    (departments::SERVICE, env!("CARGO_PKG_VERSION")),
    (agents::SERVICE, env!("CARGO_PKG_VERSION")),
    (transfers::SERVICE, env!("CARGO_PKG_VERSION")),
    (realtime::SERVICE, env!("CARGO_PKG_VERSION")),
    (tts::SERVICE, env!("CARGO_PKG_VERSION")),
    (telephony::SERVICE, env!("CARGO_PKG_VERSION")),
    (contacts::SERVICE, env!("CARGO_PKG_VERSION")),
];

/// All routes on one router: what API Gateway fronts on AWS (the HTTP API, the SSE
/// function URL, and the WebSocket API with its management endpoint).
pub fn app(
    state: AppState,
    gateway: &LocalGateway,
    tts: tts::Tts,
    telephony: telephony::Telephony,
    contacts: contacts::Contacts,
    accounts: accounts::Accounts,
) -> Router {
    let outbox = accounts.mailer.clone();
    let routes = accounts::routes(accounts)
        .merge(departments::routes())
        .merge(agents::routes())
        .merge(transfers::routes())
        .merge(realtime::routes())
        .merge(tts::routes(tts))
        .merge(telephony::routes(telephony.clone()))
        .merge(telephony::webhook_routes(telephony))
        .merge(contacts::routes(contacts))
        .merge(health_routes_for("/health", &SERVICES));
    // The local stand-in for delivered email: what the accounts function sent.
    let outbox = Router::new().route(
        "/__local/outbox",
        axum::routing::get(move || {
            let outbox = outbox.clone();
            async move { axum::Json(serde_json::json!({ "emails": outbox.outbox() })) }
        }),
    );
    finish(routes, state).merge(gateway.routes()).merge(outbox)
}

/// Follows the core table's stream and runs the realtime fan-out and the telephony
/// consumer, as the event source mappings do on AWS; stops when the returned handle is
/// aborted.
pub fn spawn_stream_follower(
    realtime: Realtime,
    telephony: Option<telephony::Telephony>,
    dynamodb_url: &str,
    table: &str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crate::streams::follow(
        realtime,
        telephony,
        dynamodb_url.to_owned(),
        table.to_owned(),
    ))
}

/// Runs the transfer timers (offer timeouts, wrap-up ends) every `every`, as the scheduled
/// sweeper function does on AWS; stops when the returned handle is dropped or aborted.
pub fn spawn_sweeper(state: AppState, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match transfers::sweeper::sweep(&state).await {
                Ok(swept) if swept.offers_expired + swept.wrap_ups_ended > 0 => {
                    tracing::info!(?swept, "timers swept");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "sweep failed"),
            }
        }
    })
}

/// Runs the telephony reconciler (agent legs whose reports were lost) every `every`, as
/// the events function's schedule does on AWS; stops when the handle is aborted.
pub fn spawn_reconciler(
    telephony: telephony::Telephony,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match telephony::reconcile::reconcile(&telephony).await {
                Ok(done) if done.repaired + done.errors > 0 => {
                    tracing::info!(?done, "agent legs reconciled");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "reconcile failed"),
            }
        }
    })
}

/// Delivers the bucket's object-created notifications for the import queue to the import
/// worker, as S3 does on AWS: every `every`, each new object under `imports/queue/` becomes
/// one notification event (each handled on its own task); stops when the handle is aborted.
pub fn spawn_import_notifications(
    contacts: contacts::Contacts,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let in_flight = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::<
            String,
        >::new()));
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let listed = contacts
                .s3
                .list_objects_v2()
                .bucket(contacts.bucket())
                .prefix(contacts::import::QUEUE_PREFIX)
                .max_keys(100)
                .send()
                .await;
            let objects = match listed {
                Ok(listed) => listed.contents.unwrap_or_default(),
                Err(err) => {
                    tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(err), "listing the import queue failed");
                    continue;
                }
            };
            for object in objects {
                let Some(key) = object.key else { continue };
                let fresh = in_flight
                    .lock()
                    .map(|mut set| set.insert(key.clone()))
                    .unwrap_or(false);
                if !fresh {
                    continue;
                }
                let contacts = contacts.clone();
                let in_flight = in_flight.clone();
                let size = object.size.unwrap_or_default().max(0) as u64;
                tokio::spawn(async move {
                    let event = contacts::import::notification_event(contacts.bucket(), &key, size);
                    let budget =
                        std::time::Duration::from_secs(contacts.config.import_budget_seconds);
                    if let Err(err) =
                        contacts::import::handle_s3_event(&contacts, &event, budget).await
                    {
                        // As S3's retries do: the object stays and is delivered again.
                        tracing::warn!(key, error = %err, "import notification failed; delivered again");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    if let Ok(mut set) = in_flight.lock() {
                        set.remove(&key);
                    }
                });
            }
        }
    })
}
