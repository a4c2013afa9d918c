//! The local stand-in for API Gateway's WebSocket API.
//!
//! Clients connect at `/ws` (or `/ws/transfers`, pre-subscribed to transfers as the guide's
//! URL is). Each handshake, frame and close becomes the API Gateway WebSocket proxy event AWS
//! would send (`$connect`, `$default`, `$disconnect`) and is handed to the realtime function's
//! Lambda entry point; a `$connect` answer other than 2xx refuses the handshake with that
//! status. The management API is served at `/@connections/{connectionId}` (`POST` sends a
//! frame, `GET` describes the connection, `DELETE` closes it; an unknown id answers 410 with
//! `x-amzn-errortype: GoneException`), so the function's `PostToConnection` client works
//! unchanged against it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use realtime::Realtime;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// The stage name in local events.
pub const LOCAL_STAGE: &str = "local";

struct Peer {
    frames: mpsc::UnboundedSender<Message>,
    connected_at: OffsetDateTime,
    last_active_at: OffsetDateTime,
    source_ip: String,
    user_agent: Option<String>,
}

/// The emulated WebSocket API: open connections and the realtime function behind them.
#[derive(Clone)]
pub struct LocalGateway {
    realtime: Realtime,
    tts: Option<tts::ws::TtsSocket>,
    peers: Arc<Mutex<HashMap<String, Peer>>>,
}

impl std::fmt::Debug for LocalGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGateway").finish_non_exhaustive()
    }
}

impl LocalGateway {
    /// A gateway in front of `realtime`.
    pub fn new(realtime: Realtime) -> Self {
        Self {
            realtime,
            tts: None,
            peers: Arc::default(),
        }
    }

    /// Also serves `/ws/tts` through the TTS WebSocket function.
    pub fn with_tts(mut self, socket: tts::ws::TtsSocket) -> Self {
        self.tts = Some(socket);
        self
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Peer>> {
        match self.peers.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// How many clients are connected.
    pub fn connected(&self) -> usize {
        self.peers().len()
    }

    /// The WebSocket endpoints and the management API.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/ws", get(upgrade))
            .route("/ws/transfers", get(upgrade_transfers))
            .route("/ws/tts", get(upgrade_tts))
            .route(
                "/@connections/{connection_id}",
                get(describe_connection)
                    .post(post_to_connection)
                    .delete(delete_connection),
            )
            .with_state(self.clone())
    }

    async fn invoke(&self, target: Target, event: Value) -> Value {
        if target == Target::Tts {
            return match &self.tts {
                Some(socket) => socket.handle(event).await,
                None => json!({"statusCode": 404}),
            };
        }
        match realtime::fanout::dispatch(&self.realtime, event).await {
            Ok(response) => response,
            Err(err) => {
                tracing::error!(error = %err, "realtime function failed");
                json!({"statusCode": 500})
            }
        }
    }
}

/// Which WebSocket API a connection belongs to (on AWS: two APIs, two functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `/ws`, `/ws/transfers`: the realtime function.
    Realtime,
    /// `/ws/tts`: the TTS WebSocket function.
    Tts,
}

/// An API Gateway connection id: 11 random bytes in base64, like `L0SM9cOFvHcCIhw=`.
fn new_connection_id() -> String {
    let bytes = uuid::Uuid::now_v7().into_bytes();
    base64::engine::general_purpose::STANDARD.encode(&bytes[5..16])
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The `requestContext` API Gateway sends for `route_key` on `connection_id`.
fn request_context(
    route_key: &str,
    event_type: &str,
    connection_id: &str,
    domain_name: &str,
    connected_at: OffsetDateTime,
    source_ip: &str,
    user_agent: Option<&str>,
) -> Value {
    let now = OffsetDateTime::now_utc();
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let mut context = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": vocelio_shared::clock::rfc3339(now),
        "messageDirection": "IN",
        "stage": LOCAL_STAGE,
        "connectedAt": millis(connected_at),
        "requestTimeEpoch": millis(now),
        "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        "requestId": request_id,
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": "local",
    });
    if event_type == "MESSAGE" {
        context["messageId"] = json!(uuid::Uuid::now_v7().simple().to_string());
    }
    context
}

async fn upgrade(
    State(gateway): State<LocalGateway>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    connect(gateway, Target::Realtime, ws, params, headers).await
}

/// `/ws/tts`: text in, audio out (the TTS WebSocket API on AWS).
async fn upgrade_tts(
    State(gateway): State<LocalGateway>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    connect(gateway, Target::Tts, ws, params, headers).await
}

/// `/ws/transfers`: the guide's URL; on AWS the stage URL with `?channel=transfers`.
async fn upgrade_transfers(
    State(gateway): State<LocalGateway>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Query(mut params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    params
        .entry("channel".into())
        .or_insert_with(|| "transfers".into());
    connect(gateway, Target::Realtime, ws, params, headers).await
}

async fn connect(
    gateway: LocalGateway,
    target: Target,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    params: HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let body = json!({
                "error": format!("this is the WebSocket endpoint: open it with a WebSocket client ({rejection})"),
                "code": "websocket_upgrade_required",
            });
            return (StatusCode::UPGRADE_REQUIRED, axum::Json(body)).into_response();
        }
    };
    let connection_id = new_connection_id();
    let connected_at = OffsetDateTime::now_utc();
    let domain_name = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), json!(v.to_str().ok()?))))
        .collect();
    // The connection exists from `$connect` on: frames posted meanwhile wait in its queue.
    let (frames, queued) = mpsc::unbounded_channel();
    gateway.peers().insert(
        connection_id.clone(),
        Peer {
            frames,
            connected_at,
            last_active_at: connected_at,
            source_ip: "127.0.0.1".into(),
            user_agent: user_agent.clone(),
        },
    );
    let event = json!({
        "headers": header_map,
        "queryStringParameters": if params.is_empty() { Value::Null } else { json!(params) },
        "requestContext": request_context("$connect", "CONNECT", &connection_id, &domain_name, connected_at, "127.0.0.1", user_agent.as_deref()),
        "isBase64Encoded": false,
    });
    let answer = gateway.invoke(target, event).await;
    let status = answer["statusCode"].as_u64().unwrap_or(500);
    if !(200..300).contains(&status) {
        gateway.peers().remove(&connection_id);
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = answer["body"].as_str().unwrap_or("").to_owned();
        return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    ws.on_upgrade(move |socket| {
        serve_socket(
            gateway,
            SocketInfo {
                target,
                connection_id,
                domain_name,
                connected_at,
                user_agent,
            },
            socket,
            queued,
        )
    })
}

/// Who a socket is: its API, id and handshake facts.
struct SocketInfo {
    target: Target,
    connection_id: String,
    domain_name: String,
    connected_at: OffsetDateTime,
    user_agent: Option<String>,
}

async fn serve_socket(
    gateway: LocalGateway,
    info: SocketInfo,
    socket: WebSocket,
    mut queued: mpsc::UnboundedReceiver<Message>,
) {
    let SocketInfo {
        target,
        connection_id,
        domain_name,
        connected_at,
        user_agent,
    } = info;
    let (mut sink, mut incoming) = socket.split();
    let mut writer = tokio::spawn(async move {
        while let Some(frame) = queued.recv().await {
            let closing = matches!(frame, Message::Close(_));
            if sink.send(frame).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    loop {
        // The writer ends when the connection is closed from the server side
        // (`DELETE @connections/{id}`): API Gateway then runs `$disconnect` at once.
        let frame = tokio::select! {
            frame = incoming.next() => frame,
            _ = &mut writer => break,
        };
        let Some(Ok(frame)) = frame else {
            break;
        };
        let (body, is_base64) = match frame {
            Message::Text(text) => (text.as_str().to_owned(), false),
            Message::Binary(bytes) => (
                base64::engine::general_purpose::STANDARD.encode(&bytes),
                true,
            ),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if let Some(peer) = gateway.peers().get_mut(&connection_id) {
            peer.last_active_at = OffsetDateTime::now_utc();
        }
        let event = json!({
            "requestContext": request_context("$default", "MESSAGE", &connection_id, &domain_name, connected_at, "127.0.0.1", user_agent.as_deref()),
            "body": body,
            "isBase64Encoded": is_base64,
        });
        gateway.invoke(target, event).await;
    }
    gateway.peers().remove(&connection_id);
    let mut context = request_context_object(
        "$disconnect",
        "DISCONNECT",
        &connection_id,
        &domain_name,
        connected_at,
        user_agent.as_deref(),
    );
    context.insert("disconnectStatusCode".into(), json!(1005));
    context.insert(
        "disconnectReason".into(),
        json!("Client-side close frame status not set"),
    );
    let event = json!({
        "headers": {"Host": domain_name},
        "requestContext": context,
        "isBase64Encoded": false,
    });
    gateway.invoke(target, event).await;
    writer.abort();
}

/// `request_context` as a map, so `$disconnect` can add its fields.
fn request_context_object(
    route_key: &str,
    event_type: &str,
    connection_id: &str,
    domain_name: &str,
    connected_at: OffsetDateTime,
    user_agent: Option<&str>,
) -> serde_json::Map<String, Value> {
    match request_context(
        route_key,
        event_type,
        connection_id,
        domain_name,
        connected_at,
        "127.0.0.1",
        user_agent,
    ) {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn gone(connection_id: &str) -> Response {
    (
        StatusCode::GONE,
        [
            ("x-amzn-errortype", "GoneException"),
            ("content-type", "application/json"),
        ],
        json!({"message": format!("connection {connection_id} is gone")}).to_string(),
    )
        .into_response()
}

async fn post_to_connection(
    State(gateway): State<LocalGateway>,
    Path(connection_id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > 128 * 1024 {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-errortype", "PayloadTooLargeException")],
            json!({"message": "payload too large"}).to_string(),
        )
            .into_response();
    }
    let frame = match String::from_utf8(body.to_vec()) {
        Ok(text) => Message::Text(text.into()),
        Err(_) => Message::Binary(body),
    };
    let sent = gateway
        .peers()
        .get(&connection_id)
        .map(|peer| peer.frames.send(frame).is_ok());
    match sent {
        Some(true) => StatusCode::OK.into_response(),
        _ => {
            gateway.peers().remove(&connection_id);
            gone(&connection_id)
        }
    }
}

async fn describe_connection(
    State(gateway): State<LocalGateway>,
    Path(connection_id): Path<String>,
) -> Response {
    let peers = gateway.peers();
    let Some(peer) = peers.get(&connection_id) else {
        drop(peers);
        return gone(&connection_id);
    };
    let body = json!({
        "connectedAt": vocelio_shared::clock::rfc3339(peer.connected_at),
        "identity": {"sourceIp": peer.source_ip, "userAgent": peer.user_agent},
        "lastActiveAt": vocelio_shared::clock::rfc3339(peer.last_active_at),
    });
    drop(peers);
    axum::Json(body).into_response()
}

async fn delete_connection(
    State(gateway): State<LocalGateway>,
    Path(connection_id): Path<String>,
) -> Response {
    let peer = gateway.peers().remove(&connection_id);
    match peer {
        Some(peer) => {
            let _ = peer.frames.send(Message::Close(None));
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(&connection_id),
    }
}
