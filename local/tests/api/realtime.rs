//! Server-Sent Events, read by a real streaming HTTP client as the app's `EventSource` does.

use std::time::Duration;

use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::helpers::{TestApp, events_of, new_tenant, spawn_app_with};

/// One SSE message: its `id:` (if any) and its JSON `data:`.
#[derive(Debug, Clone)]
struct Message {
    id: Option<String>,
    data: Value,
}

/// A minimal `EventSource`: reads the response in chunks and splits it into messages.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(
        app: &TestApp,
        path: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<Self, (u16, Value)> {
        let url = match token {
            Some(t) => format!("{}{path}?token={t}", app.base),
            None => format!("{}{path}", app.base),
        };
        let mut request = app.http().get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        if response.status() != 200 {
            let status = response.status().as_u16();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next data message within `wait` (comments, heartbeats and `retry:` are skipped).
    async fn next(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Some(Message {
                        id,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Every message until the stream is quiet for `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = self.next(quiet).await {
            out.push(m);
        }
        out
    }
}

fn token(tenant: &str, role: Role) -> String {
    vocelio_local::stack::mint_token(crate::helpers::dev_keys(), tenant, "viewer", role, 1).unwrap()
}

async fn fast_app() -> TestApp {
    spawn_app_with(&[("SSE_POLL_MILLIS", "100")]).await
}

#[tokio::test]
async fn a_calls_stream_shows_its_transfer_as_it_happens() {
    let app = fast_app().await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &[]).await;
    let call_id = sup.start_call("555-222-3333").await;
    let other_call = sup.start_call("555-222-4444").await;
    let mut stream = EventStream::open(
        &app,
        &format!("/api/calls/{call_id}/events"),
        Some(&token(&app.tenant, Role::Supervisor)),
        None,
    )
    .await
    .unwrap();

    sup.post(
        "/api/calls/transfer",
        json!({"call_id": other_call, "target_department": "Sales"}),
    )
    .await
    .expect(201);
    sup.post(
        "/api/calls/transfer",
        json!({"call_id": call_id, "target_department": "Sales", "transfer_type": "cold"}),
    )
    .await
    .expect(201);
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while let Some(m) = stream.next(Duration::from_secs(3)).await {
        seen.push(m.clone());
        if m.data["type"] == "transfer_initiated" {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "delivered after {:?}",
        started.elapsed()
    );
    let initiated = seen
        .iter()
        .find(|m| m.data["type"] == "transfer_initiated")
        .expect("transfer_initiated");
    assert_eq!(initiated.data["target_department"], "Sales");
    assert_eq!(initiated.data["transfer_type"], "cold");
    assert!(initiated.data["timestamp"].is_string());
    assert!(
        initiated
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    let rest = stream.drain(Duration::from_millis(600)).await;
    assert!(
        seen.iter()
            .chain(&rest)
            .all(|m| m.data["call_id"] == call_id.as_str()),
        "another call's event leaked"
    );

    // The call ends: its stream says so, with the total duration.
    sup.send(
        reqwest::Method::PATCH,
        &format!("/api/calls/{call_id}"),
        Some(json!({"status": "completed"})),
    )
    .await
    .expect(200);
    let mut ended = None;
    while let Some(m) = stream.next(Duration::from_secs(3)).await {
        if m.data["type"] == "call_ended" {
            ended = Some(m);
            break;
        }
    }
    assert!(ended.expect("call_ended").data["total_duration"].is_u64());
}

#[tokio::test]
async fn streams_need_a_token_and_stay_in_their_tenant() {
    let app = fast_app().await;
    let sup = app.supervisor();
    let call_id = sup.start_call("555-222-3333").await;
    let path = format!("/api/calls/{call_id}/events");
    let (status, body) = EventStream::open(&app, &path, None, None)
        .await
        .err()
        .unwrap();
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(
        EventStream::open(&app, &path, Some("garbage"), None)
            .await
            .err()
            .unwrap()
            .0,
        401
    );
    let outsider = new_tenant();
    assert_eq!(
        EventStream::open(&app, &path, Some(&token(&outsider, Role::Admin)), None)
            .await
            .err()
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        EventStream::open(
            &app,
            &path,
            Some(&token(&app.tenant, Role::Admin)),
            Some("not-an-id")
        )
        .await
        .err()
        .unwrap()
        .0,
        400
    );

    // Another tenant's monitor sees its own (empty) snapshot and nothing of this tenant.
    let mut theirs = EventStream::open(
        &app,
        "/api/calls/active/events",
        Some(&token(&outsider, Role::Supervisor)),
        None,
    )
    .await
    .unwrap();
    let first = theirs.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        first.data,
        json!({"type": "active_calls_update", "active_calls": [], "timestamp": first.data["timestamp"]})
    );
    sup.send(
        reqwest::Method::PATCH,
        &format!("/api/calls/{call_id}"),
        Some(json!({"status": "on_hold"})),
    )
    .await
    .expect(200);
    assert!(
        theirs.drain(Duration::from_millis(800)).await.is_empty(),
        "another tenant's change reached this stream"
    );
}

#[tokio::test]
async fn the_active_calls_stream_sends_a_snapshot_then_updates() {
    let app = fast_app().await;
    let sup = app.supervisor();
    let call_id = sup.start_call("555-222-3333").await;
    let mut monitor = EventStream::open(
        &app,
        "/api/calls/active/events",
        Some(&token(&app.tenant, Role::Supervisor)),
        None,
    )
    .await
    .unwrap();
    let snapshot = monitor.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(snapshot.data["type"], "active_calls_update");
    assert_eq!(
        snapshot.data["active_calls"][0]["call_id"],
        call_id.as_str()
    );
    assert_eq!(snapshot.data["active_calls"][0]["can_transfer"], true);

    sup.send(
        reqwest::Method::PATCH,
        &format!("/api/calls/{call_id}"),
        Some(json!({"status": "on_hold"})),
    )
    .await
    .expect(200);
    let update = monitor.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(update.data["type"], "call_update");
    assert_eq!(update.data["call_id"], call_id.as_str());
    assert_eq!(update.data["updates"]["status"], "on_hold");
    let refreshed = monitor.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(refreshed.data["type"], "active_calls_update");
    assert_eq!(refreshed.data["active_calls"][0]["status"], "on_hold");
    // Same stream on the app's other path.
    EventStream::open(
        &app,
        "/api/calls/events",
        Some(&token(&app.tenant, Role::Agent)),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_reconnecting_client_gets_every_missed_event_exactly_once() {
    let app = fast_app().await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &[]).await;
    let call_id = sup.start_call("555-222-3333").await;
    let path = format!("/api/calls/{call_id}/events");
    let viewer = token(&app.tenant, Role::Supervisor);

    let mut first = EventStream::open(&app, &path, Some(&viewer), None)
        .await
        .unwrap();
    let raised = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    let before_drop = first.drain(Duration::from_millis(600)).await;
    assert!(!before_drop.is_empty());
    let last_seen = before_drop.last().unwrap().id.clone().unwrap();
    drop(first);

    // While the screen is away: the agent accepts and completes, the call ends.
    let tid = raised.body["transfer_id"].as_str().unwrap().to_owned();
    app.agent("ana")
        .post(&format!("/transfer/{tid}/accept"), json!({}))
        .await
        .expect(200);
    app.agent("ana")
        .post(&format!("/transfer/{tid}/complete"), json!({}))
        .await
        .expect(200);
    sup.send(
        reqwest::Method::PATCH,
        &format!("/api/calls/{call_id}"),
        Some(json!({"status": "completed"})),
    )
    .await
    .expect(200);

    let mut again = EventStream::open(&app, &path, Some(&viewer), Some(&last_seen))
        .await
        .unwrap();
    let resumed = again.drain(Duration::from_millis(800)).await;
    let resumed_ids: Vec<String> = resumed.iter().map(|m| m.id.clone().unwrap()).collect();
    // Exactly the call's events the log holds after the last one seen, in order, once each.
    let expected: Vec<String> = events_of(&app, &app.tenant)
        .await
        .into_iter()
        .filter(|e| {
            e["data"]["call_id"] == call_id.as_str()
                && e["event_id"].as_str().unwrap() > last_seen.as_str()
        })
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(resumed_ids, expected);
    let types: Vec<&str> = resumed
        .iter()
        .map(|m| m.data["type"].as_str().unwrap())
        .collect();
    for kind in ["transfer_accepted", "transfer_completed", "call_ended"] {
        assert!(types.contains(&kind), "{kind} missing from {types:?}");
    }
    assert!(
        !before_drop
            .iter()
            .any(|m| resumed_ids.contains(m.id.as_ref().unwrap())),
        "an event was repeated"
    );
}
