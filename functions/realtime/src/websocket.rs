//! The WebSocket API's routes: `$connect` (authenticate, record the connection, optionally
//! pre-subscribe), `$disconnect` (forget it) and `$default` (subscribe, unsubscribe, ping).
//! Replies go back through the management API, so the same code runs behind API Gateway and
//! behind the local stack's emulation of it.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::{ApiError, AuthUser, Role, clock};

use crate::Realtime;
use crate::channels::{
    Channel, ClientMessage, Filters, Refusal, Subscriber, authorize, parse_client_message,
};
use crate::connections::{CONNECTION_TTL_SECONDS, Connection, Subscription};
use crate::delivery::Delivery;

/// An API Gateway WebSocket proxy event (the fields this function reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketEvent {
    pub request_context: WebSocketContext,
    #[serde(default)]
    pub query_string_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

/// The event's `requestContext`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketContext {
    /// `$connect`, `$disconnect`, `$default` (or a custom route key).
    pub route_key: String,
    pub connection_id: String,
    /// `abc123.execute-api.us-east-1.amazonaws.com` (or a custom domain).
    #[serde(default)]
    pub domain_name: Option<String>,
    /// The stage, e.g. `live`.
    #[serde(default)]
    pub stage: Option<String>,
}

/// What the function answers API Gateway: only `$connect`'s status reaches the client (a
/// non-2xx refuses the handshake with that status).
fn response(status: u16, body: Option<Value>) -> Value {
    match body {
        Some(body) => json!({
            "statusCode": status,
            "headers": {"content-type": "application/json"},
            "body": body.to_string(),
        }),
        None => json!({"statusCode": status}),
    }
}

fn refuse(err: &ApiError) -> Value {
    let status = err.status().as_u16();
    response(status, Some(err.body()))
}

impl Realtime {
    /// The management API endpoint that reaches the connections of `context`.
    pub fn endpoint_for(&self, context: &WebSocketContext) -> Option<String> {
        if let Some(url) = &self.app.config.websocket_callback_url {
            return Some(url.clone());
        }
        let domain = context.domain_name.as_deref()?;
        match context.stage.as_deref() {
            Some(stage) if !stage.is_empty() && stage != "$default" => {
                Some(format!("https://{domain}/{stage}"))
            }
            _ => Some(format!("https://{domain}")),
        }
    }

    /// Handles one WebSocket event; returns the proxy response.
    pub async fn handle_websocket(&self, event: WebSocketEvent) -> Value {
        match event.request_context.route_key.as_str() {
            "$connect" => self.connect(&event).await,
            "$disconnect" => {
                let id = &event.request_context.connection_id;
                if let Err(err) = self.connections.close(id).await {
                    tracing::warn!(connection_id = %id, error = %err, "disconnect cleanup failed");
                }
                response(200, None)
            }
            _ => {
                self.message(&event).await;
                response(200, None)
            }
        }
    }

    async fn connect(&self, event: &WebSocketEvent) -> Value {
        let params = event.query_string_parameters.clone().unwrap_or_default();
        let Some(token) = params.get("token").filter(|t| !t.is_empty()) else {
            return refuse(&ApiError::Unauthorized(
                "pass the access token as the token query parameter".into(),
            ));
        };
        let user = match self.app.jwt.verify(token) {
            Ok(user) => user,
            Err(err) => return refuse(&err),
        };
        let Some(endpoint) = self.endpoint_for(&event.request_context) else {
            return refuse(&ApiError::internal(
                "the $connect event has no domainName and WEBSOCKET_CALLBACK_URL is unset",
            ));
        };
        let department = match self.agent_department(&user).await {
            Ok(d) => d,
            Err(err) => return refuse(&err),
        };
        let now = clock::now();
        let expires_at = now.unix_timestamp() + CONNECTION_TTL_SECONDS;
        let connection = Connection {
            connection_id: event.request_context.connection_id.clone(),
            tenant_id: user.tenant.as_str().to_owned(),
            user_id: user.user_id.clone(),
            role: user.role,
            department,
            endpoint,
            connected_at: clock::rfc3339(now),
            expires_at,
        };
        let presubscription = match presubscription(&connection, &params) {
            Ok(s) => s,
            Err(refusal) => {
                return response(
                    if refusal.code == "forbidden" {
                        403
                    } else {
                        400
                    },
                    Some(json!({"error": refusal.message, "code": refusal.code})),
                );
            }
        };
        match self
            .connections
            .open(&connection, presubscription.as_ref())
            .await
        {
            Ok(()) => response(200, None),
            Err(err) => refuse(&err),
        }
    }

    /// An agent's department (their token's subject is their agent id).
    async fn agent_department(&self, user: &AuthUser) -> Result<Option<String>, ApiError> {
        if user.role != Role::Agent {
            return Ok(None);
        }
        let agent = transfers::store::Store::new(&self.app, &user.tenant)
            .agent(&user.user_id)
            .await?;
        Ok(agent.map(|a| a.department))
    }

    async fn message(&self, event: &WebSocketEvent) {
        let context = &event.request_context;
        let Some(endpoint) = self.endpoint_for(context) else {
            tracing::warn!(connection_id = %context.connection_id, "no endpoint to reply to");
            return;
        };
        let body = match decode_body(event) {
            Ok(body) => body,
            Err(refusal) => {
                self.reply(&endpoint, &context.connection_id, &refusal.frame())
                    .await;
                return;
            }
        };
        let frame = match parse_client_message(&body) {
            Ok(ClientMessage::Ping) => json!({"type": "pong", "at": clock::rfc3339(clock::now())}),
            Ok(message) => match self.apply(&context.connection_id, message).await {
                Ok(frame) => frame,
                Err(refusal) => refusal.frame(),
            },
            Err(refusal) => refusal.frame(),
        };
        self.reply(&endpoint, &context.connection_id, &frame).await;
    }

    async fn apply(&self, connection_id: &str, message: ClientMessage) -> Result<Value, Refusal> {
        let internal = |err: ApiError| {
            tracing::error!(error = %err, "subscription change failed");
            Refusal::new("internal_error", "the change could not be saved; try again")
        };
        let connection = self
            .connections
            .connection(connection_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                Refusal::new(
                    "unknown_connection",
                    "this connection is no longer registered; reconnect",
                )
            })?;
        match message {
            ClientMessage::Subscribe { channel, filters } => {
                let subscription = subscribe(&connection, channel, filters, false)?;
                if !self
                    .connections
                    .subscribe(&subscription)
                    .await
                    .map_err(internal)?
                {
                    return Err(Refusal::new(
                        "unknown_connection",
                        "this connection is no longer registered; reconnect",
                    ));
                }
                Ok(
                    json!({"type": "subscribed", "channel": channel, "filters": subscription.filters}),
                )
            }
            ClientMessage::Unsubscribe { channel } => {
                self.connections
                    .unsubscribe(connection_id, channel)
                    .await
                    .map_err(internal)?;
                Ok(json!({"type": "unsubscribed", "channel": channel}))
            }
            ClientMessage::Ping => Ok(json!({"type": "pong"})),
        }
    }

    /// Sends `frame` to one connection; forgets the connection when it is gone.
    pub async fn reply(&self, endpoint: &str, connection_id: &str, frame: &Value) -> Delivery {
        let delivery = self
            .poster
            .post(endpoint, connection_id, frame.to_string().into_bytes())
            .await;
        match &delivery {
            Delivery::Gone => {
                if let Err(err) = self.connections.close(connection_id).await {
                    tracing::warn!(connection_id, error = %err, "removing a gone connection failed");
                }
            }
            Delivery::Failed(why) => {
                tracing::warn!(connection_id, error = %why, "reply not delivered");
            }
            Delivery::Delivered => {}
        }
        delivery
    }
}

fn decode_body(event: &WebSocketEvent) -> Result<String, Refusal> {
    let raw = event.body.clone().unwrap_or_default();
    if !event.is_base64_encoded {
        return Ok(raw);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|_| Refusal::new("invalid_message", "the frame is not valid base64"))?;
    String::from_utf8(bytes)
        .map_err(|_| Refusal::new("invalid_message", "send JSON text frames, not binary data"))
}

fn subscribe(
    connection: &Connection,
    channel: Channel,
    filters: Filters,
    summary: bool,
) -> Result<Subscription, Refusal> {
    let subscriber = Subscriber {
        role: connection.role,
        user_id: connection.user_id.clone(),
        department: connection.department.clone(),
    };
    authorize(&subscriber, channel, &filters)?;
    Ok(Subscription {
        connection_id: connection.connection_id.clone(),
        tenant_id: connection.tenant_id.clone(),
        channel,
        filters,
        summary,
        endpoint: connection.endpoint.clone(),
        expires_at: connection.expires_at,
    })
}

/// The subscription a client asked for in its URL (`?channel=transfers&department=...`;
/// the local stack's `/ws/transfers` adds `channel=transfers`). Agents without filters are
/// narrowed to their own transfers.
fn presubscription(
    connection: &Connection,
    params: &HashMap<String, String>,
) -> Result<Option<Subscription>, Refusal> {
    let Some(name) = params.get("channel").filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let channel: Channel = name
        .parse()
        .map_err(|e: String| Refusal::new("unknown_channel", e))?;
    let mut filters = Filters {
        department: params.get("department").cloned(),
        agent_id: params.get("agent_id").cloned(),
        call_id: params.get("call_id").cloned(),
    };
    if connection.role == Role::Agent && filters.is_empty() {
        filters.agent_id = Some(connection.user_id.clone());
    }
    subscribe(connection, channel, filters, channel == Channel::Transfers).map(Some)
}
