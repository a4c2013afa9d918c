//! WebSocket subscriptions, with a real WebSocket client against the local stack's
//! emulation of API Gateway: `$connect` / `$default` / `$disconnect` run the realtime
//! function, events reach subscribers through the DynamoDB Local stream and the
//! `@connections` management API.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use vocelio_shared::Role;
use vocelio_shared::ids::TenantId;

use crate::helpers::{TestApp, id_of, new_tenant, spawn_app};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for a frame that should come (not a latency target).
const WAIT: Duration = Duration::from_secs(10);
/// How long a test listens to be sure nothing else comes.
const QUIET: Duration = Duration::from_millis(1500);

/// A WebSocket client of the local stack.
struct Client {
    socket: Socket,
}

impl Client {
    /// Connects to `path` (`/ws`, `/ws/transfers`) with `query`; `Err(status)` when the
    /// handshake is refused.
    async fn connect(app: &TestApp, path: &str, query: &str) -> Result<Self, u16> {
        let url = format!("{}{path}?{query}", app.ws_base);
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    /// Connects as `role`/`user` of `tenant` at `/ws`.
    async fn signed_in(app: &TestApp, tenant: &str, role: Role, user: &str) -> Self {
        let token = token(tenant, role, user);
        Self::connect(app, "/ws", &format!("token={token}"))
            .await
            .expect("connect")
    }

    async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("send");
    }

    /// The next JSON frame within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match frame.expect("frame") {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("JSON")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping others; panics after [`WAIT`].
    async fn expect(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(frame) if frame["type"] == kind => return frame,
                Some(_) => continue,
                None => panic!("no {kind} frame within {WAIT:?}"),
            }
        }
    }

    /// Every frame until nothing comes for `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next(quiet).await {
            frames.push(frame);
        }
        frames
    }

    async fn subscribe(&mut self, channel: &str, filters: Value) -> Value {
        self.send(json!({"action": "subscribe", "channel": channel, "filters": filters}))
            .await;
        self.next(WAIT).await.expect("subscribe reply")
    }
}

fn token(tenant: &str, role: Role, user: &str) -> String {
    vocelio_local::stack::mint_token(crate::helpers::dev_keys(), tenant, user, role, 1)
        .expect("token")
}

/// Waits until the tenant's subscriber list of `channel` has `count` entries; returns them.
async fn subscribers_settle(
    app: &TestApp,
    tenant: &str,
    channel: realtime::channels::Channel,
    count: usize,
) -> Vec<realtime::connections::Subscription> {
    let tenant = TenantId::parse(tenant).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let subs = app
            .realtime
            .connections
            .subscribers(&tenant, channel)
            .await
            .unwrap();
        if subs.len() == count || tokio::time::Instant::now() > deadline {
            return subs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_connection_needs_a_valid_token() {
    let app = spawn_app().await;
    assert_eq!(Client::connect(&app, "/ws", "").await.err(), Some(401));
    assert_eq!(
        Client::connect(&app, "/ws", "token=not-a-jwt").await.err(),
        Some(401)
    );
    let forged = vocelio_local::stack::mint_token(
        &crate::helpers::foreign_keys(),
        &app.tenant,
        "sup-1",
        Role::Supervisor,
        1,
    )
    .unwrap();
    assert_eq!(
        Client::connect(&app, "/ws", &format!("token={forged}"))
            .await
            .err(),
        Some(401)
    );
    let mut client = Client::signed_in(&app, &app.tenant, Role::Supervisor, "sup-1").await;
    client.send(json!({"action": "ping"})).await;
    assert_eq!(client.next(WAIT).await.unwrap()["type"], "pong");
    // A plain HTTP request to the WebSocket endpoint gets a JSON answer, not a handshake.
    let plain = app.anonymous().get("/ws").await.expect(426);
    assert_eq!(plain.code(), "websocket_upgrade_required");
}

#[tokio::test]
async fn a_department_subscriber_sees_that_departments_transfers_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.admin();
    let sales = id_of(&admin.create_department("Sales", "+1 555 010 0001").await);
    let support = id_of(&admin.create_department("Support", "+1 555 010 0002").await);

    let mut sales_screen = Client::signed_in(&app, &app.tenant, Role::Supervisor, "sup-1").await;
    let reply = sales_screen
        .subscribe("transfers", json!({"department": sales}))
        .await;
    assert_eq!(reply["type"], "subscribed");
    assert_eq!(reply["channel"], "transfers");
    assert_eq!(reply["filters"]["department"], sales.as_str());
    // The guide's message form, on another tenant's screen.
    let other_tenant = new_tenant();
    let mut other_screen = Client::signed_in(&app, &other_tenant, Role::Admin, "admin-9").await;
    other_screen
        .send(json!({"type": "subscribe", "channel": "transfers"}))
        .await;
    assert_eq!(other_screen.next(WAIT).await.unwrap()["type"], "subscribed");

    let support_call = admin.start_call("+1 555 020 0001").await;
    let sales_call = admin.start_call("+1 555 020 0002").await;
    for (call, department) in [(&support_call, &support), (&sales_call, &sales)] {
        admin
            .post(
                "/api/calls/transfer",
                json!({"call_id": call, "target_department": department, "transfer_type": "warm",
                       "transfer_reason": "billing", "urgency_level": "high", "context_summary": "asks for a refund"}),
            )
            .await
            .expect(201);
    }

    let initiated = sales_screen.expect("transfer_initiated").await;
    assert_eq!(initiated["channel"], "transfers");
    assert_eq!(initiated["data"]["call_id"], sales_call.as_str());
    assert_eq!(initiated["data"]["department_id"], sales.as_str());
    assert!(initiated["id"].as_str().unwrap().starts_with("evt_"));
    assert!(initiated["at"].is_string());
    let queued = sales_screen.expect("transfer_queued").await;
    assert_eq!(queued["data"]["call_id"], sales_call.as_str());
    let rest = sales_screen.drain(QUIET).await;
    for frame in &rest {
        assert_eq!(
            frame["data"]["department_id"],
            sales.as_str(),
            "a frame from another department: {frame}"
        );
        assert_ne!(frame["data"]["call_id"], support_call.as_str());
    }
    assert!(
        other_screen.drain(QUIET).await.is_empty(),
        "another tenant's screen received this tenant's events"
    );
}

#[tokio::test]
async fn ws_transfers_is_pre_subscribed_and_receives_the_guides_summary() {
    let app = spawn_app().await;
    let admin = app.admin();
    let sales = id_of(&admin.create_department("Sales", "+1 555 010 0003").await);
    let token = token(&app.tenant, Role::Supervisor, "sup-1");
    let mut dashboard = Client::connect(&app, "/ws/transfers", &format!("token={token}"))
        .await
        .expect("connect");
    subscribers_settle(&app, &app.tenant, realtime::channels::Channel::Transfers, 1).await;

    let call = admin.start_call("+1 555 020 0003").await;
    admin
        .post(
            "/transfer/request",
            json!({"call_id": call, "department": sales, "context": "needs a human", "priority": "high"}),
        )
        .await
        .expect(201);
    let initiated = dashboard.expect("transfer_initiated").await;
    assert_eq!(initiated["data"]["call_id"], call.as_str());
    let summary = dashboard.expect("transfer_status").await;
    assert_eq!(
        summary["data"],
        json!({"activeTransfers": 1, "availableAgents": 0, "totalQueueLength": 1})
    );

    // An agent becomes available and takes the caller: the queue empties.
    admin.register_agent("ana", &sales).await;
    app.agent("ana")
        .put("/api/agents/ana/status", json!({"status": "available"}))
        .await
        .expect(200);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let summary = dashboard.expect("transfer_status").await;
        if summary["data"]["totalQueueLength"] == 0 {
            assert_eq!(summary["data"]["activeTransfers"], 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue never emptied"
        );
    }
}

#[tokio::test]
async fn bad_messages_get_error_frames_and_the_socket_stays_open() {
    let app = spawn_app().await;
    let mut client = Client::signed_in(&app, &app.tenant, Role::Supervisor, "sup-1").await;
    for (frame, code) in [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        (r#"{"action": "dance"}"#, "unknown_action"),
        (
            r#"{"action": "subscribe", "channel": "gossip"}"#,
            "unknown_channel",
        ),
        (
            r#"{"action": "subscribe", "channel": "calls", "filters": {"colour": "red"}}"#,
            "invalid_filters",
        ),
    ] {
        client.send_text(frame).await;
        let reply = client.next(WAIT).await.expect("error frame");
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["code"], code, "{frame}");
        assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    client
        .socket
        .send(Message::Binary(vec![0xff, 0xfe].into()))
        .await
        .unwrap();
    assert_eq!(client.next(WAIT).await.unwrap()["code"], "invalid_message");
    client.send(json!({"action": "ping"})).await;
    assert_eq!(client.next(WAIT).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn agents_may_follow_only_themselves_and_their_department() {
    let app = spawn_app().await;
    let admin = app.admin();
    let sales = id_of(&admin.create_department("Sales", "+1 555 010 0004").await);
    let support = id_of(&admin.create_department("Support", "+1 555 010 0005").await);
    admin.register_agent("ana", &sales).await;
    let mut ana = Client::signed_in(&app, &app.tenant, Role::Agent, "ana").await;
    for (channel, filters) in [
        ("transfers", json!({})),
        ("transfers", json!({"department": support})),
        ("agents", json!({"agent_id": "bob"})),
        ("departments", json!({"department": sales})),
    ] {
        let reply = ana.subscribe(channel, filters.clone()).await;
        assert_eq!(reply["type"], "error", "{channel} {filters}");
        assert_eq!(reply["code"], "forbidden");
    }
    assert_eq!(
        ana.subscribe("agents", json!({"agent_id": "ana"})).await["type"],
        "subscribed"
    );
    assert_eq!(
        ana.subscribe("queues", json!({"department": sales})).await["type"],
        "subscribed"
    );
    app.agent("ana")
        .put("/api/agents/ana/status", json!({"status": "available"}))
        .await
        .expect(200);
    let status = ana.expect("agent_status_changed").await;
    assert_eq!(status["channel"], "agents");
    assert_eq!(status["data"]["agent"]["agent_id"], "ana");
    assert_eq!(status["data"]["agent"]["status"], "available");
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let app = spawn_app().await;
    let admin = app.admin();
    let mut client = Client::signed_in(&app, &app.tenant, Role::Supervisor, "sup-1").await;
    assert_eq!(
        client.subscribe("calls", json!({})).await["type"],
        "subscribed"
    );
    let first = admin.start_call("+1 555 020 0004").await;
    let update = client.expect("call_status_update").await;
    assert_eq!(update["data"]["call_id"], first.as_str());
    assert_eq!(update["channel"], "calls");

    client
        .send(json!({"action": "unsubscribe", "channel": "calls"}))
        .await;
    let reply = client.expect("unsubscribed").await;
    assert_eq!(reply["channel"], "calls");
    admin.start_call("+1 555 020 0005").await;
    let after: Vec<Value> = client.drain(QUIET).await;
    assert!(
        after.iter().all(|f| f["type"] != "call_status_update"),
        "delivered after unsubscribe: {after:?}"
    );
}

#[tokio::test]
async fn a_vanished_client_is_removed_after_its_first_failed_delivery() {
    let app = spawn_app().await;
    let admin = app.admin();
    let mut live = Client::signed_in(&app, &app.tenant, Role::Supervisor, "sup-1").await;
    assert_eq!(
        live.subscribe("calls", json!({})).await["type"],
        "subscribed"
    );
    // A connection whose $disconnect never arrived: recorded, but API Gateway no longer
    // knows it (PostToConnection answers 410 Gone).
    let now = time::OffsetDateTime::now_utc();
    let phantom = realtime::connections::Connection {
        connection_id: "Vanished0000Ab=".into(),
        tenant_id: app.tenant.clone(),
        user_id: "sup-2".into(),
        role: Role::Supervisor,
        department: None,
        endpoint: app.base.clone(),
        connected_at: vocelio_shared::clock::rfc3339(now),
        expires_at: now.unix_timestamp() + 3600,
    };
    let subscription = realtime::connections::Subscription {
        connection_id: phantom.connection_id.clone(),
        tenant_id: app.tenant.clone(),
        channel: realtime::channels::Channel::Calls,
        filters: Default::default(),
        summary: false,
        endpoint: app.base.clone(),
        expires_at: phantom.expires_at,
    };
    app.realtime
        .connections
        .open(&phantom, Some(&subscription))
        .await
        .unwrap();
    assert_eq!(
        subscribers_settle(&app, &app.tenant, realtime::channels::Channel::Calls, 2)
            .await
            .len(),
        2
    );

    admin.start_call("+1 555 020 0006").await;
    live.expect("call_status_update").await;
    let left = subscribers_settle(&app, &app.tenant, realtime::channels::Channel::Calls, 1).await;
    assert_eq!(left.len(), 1, "the vanished connection is still recorded");
    assert_ne!(left[0].connection_id, phantom.connection_id);
    assert!(
        app.realtime
            .connections
            .connection(&phantom.connection_id)
            .await
            .unwrap()
            .is_none()
    );
    // The live client still gets the next event.
    let next = admin.start_call("+1 555 020 0007").await;
    let update = live.expect("call_status_update").await;
    assert_eq!(update["data"]["call_id"], next.as_str());
}

#[tokio::test]
async fn the_management_api_describes_and_closes_connections_and_disconnect_cleans_up() {
    let app = spawn_app().await;
    let mut client = Client::signed_in(&app, &app.tenant, Role::Supervisor, "sup-1").await;
    assert_eq!(
        client.subscribe("agents", json!({})).await["type"],
        "subscribed"
    );
    let subs = subscribers_settle(&app, &app.tenant, realtime::channels::Channel::Agents, 1).await;
    let connection_id = subs[0].connection_id.clone();
    assert_eq!(app.gateway.connected(), 1);

    // The SDK client the function uses, pointed at the local management API.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .load()
        .await;
    let management = aws_sdk_apigatewaymanagement::Client::from_conf(
        aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(&app.base)
            .build(),
    );
    let described = management
        .get_connection()
        .connection_id(&connection_id)
        .send()
        .await
        .expect("GetConnection");
    assert!(described.connected_at().is_some());
    assert_eq!(
        described.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1")
    );
    management
        .delete_connection()
        .connection_id(&connection_id)
        .send()
        .await
        .expect("DeleteConnection");
    let after = client.next(WAIT).await;
    assert!(after.is_none(), "the socket should close, got {after:?}");
    // $disconnect removed the connection and its subscriptions.
    assert!(
        subscribers_settle(&app, &app.tenant, realtime::channels::Channel::Agents, 0)
            .await
            .is_empty()
    );
    let gone = management
        .post_to_connection()
        .connection_id(&connection_id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("hi"))
        .send()
        .await
        .expect_err("posting to a closed connection");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    );
}
