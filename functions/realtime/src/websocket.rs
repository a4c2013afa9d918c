//! The WebSocket API's routes: `$connect` (authenticate, record the connection, optionally
//! pre-subscribe), `$disconnect` (forget it) and `$default` (subscribe, unsubscribe, ping).
//! Replies go back through the management API, so the same code runs behind API Gateway and
//! behind the local stack's emulation of it.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};
use vocelio_shared::{ApiError, AuthUser, Role, clock};

use crate::Realtime;
use crate::channels::{
    Channel, ClientMessage, Filters, Refusal, Subscriber, authorize, parse_client_message,
};
use crate::connections::{CONNECTION_TTL_SECONDS, Connection, Subscription};
use crate::delivery::Delivery;
pub use vocelio_shared::wsapi::{WebSocketContext, WebSocketEvent, management_endpoint};

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
        management_endpoint(self.app.config.websocket_callback_url.as_deref(), context)
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
        let user =
            match vocelio_shared::auth::authorize_stream(&self.app, token, "/ws/transfers").await {
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
            // No read of the connection for a ping.
            Ok(ClientMessage::Ping) => pong(),
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
            ClientMessage::Ping => Ok(pong()),
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

fn pong() -> Value {
    json!({"type": "pong", "at": clock::rfc3339(clock::now())})
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

#[cfg(test)]
mod tests {
    use super::*;

    fn context(domain: Option<&str>, stage: Option<&str>) -> WebSocketContext {
        WebSocketContext {
            route_key: "$connect".into(),
            connection_id: "abc=".into(),
            domain_name: domain.map(Into::into),
            stage: stage.map(Into::into),
        }
    }

    #[test]
    fn the_callback_endpoint_comes_from_the_event_unless_configured() {
        let aws = context(
            Some("abc123.execute-api.us-east-1.amazonaws.com"),
            Some("live"),
        );
        assert_eq!(
            management_endpoint(None, &aws).as_deref(),
            Some("https://abc123.execute-api.us-east-1.amazonaws.com/live")
        );
        assert_eq!(
            management_endpoint(None, &context(Some("ws.example.com"), Some("$default")))
                .as_deref(),
            Some("https://ws.example.com")
        );
        assert_eq!(
            management_endpoint(Some("http://127.0.0.1:8000"), &aws).as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(management_endpoint(None, &context(None, None)), None);
    }

    #[test]
    fn presubscriptions_narrow_agents_to_themselves() {
        let agent = Connection {
            connection_id: "c=".into(),
            tenant_id: "t1".into(),
            user_id: "ana".into(),
            role: Role::Agent,
            department: Some("d1".into()),
            endpoint: "https://x".into(),
            connected_at: "2026-11-25T10:00:00Z".into(),
            expires_at: 0,
        };
        let params: HashMap<String, String> =
            [("channel".to_owned(), "transfers".to_owned())].into();
        let sub = presubscription(&agent, &params).unwrap().unwrap();
        assert_eq!(sub.filters.agent_id.as_deref(), Some("ana"));
        assert!(sub.summary);
        let none: HashMap<String, String> = HashMap::new();
        assert!(presubscription(&agent, &none).unwrap().is_none());
        let bad: HashMap<String, String> = [("channel".to_owned(), "gossip".to_owned())].into();
        assert_eq!(
            presubscription(&agent, &bad).unwrap_err().code,
            "unknown_channel"
        );
    }
}
