//! API Gateway WebSocket APIs: the proxy events a function receives, the management API
//! endpoint that reaches a connection, and posting frames to it (`PostToConnection`), one
//! SDK client per endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_apigatewaymanagement::error::DisplayErrorContext;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde::Deserialize;

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

/// What became of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// API Gateway accepted it for the connection.
    Delivered,
    /// The connection no longer exists (410 `GoneException`): forget it.
    Gone,
    /// Another failure (throttled, forbidden, network); the connection is kept.
    Failed(String),
}

/// The management API clients, by endpoint (`https://{domainName}/{stage}`).
#[derive(Debug, Clone)]
pub struct Poster {
    sdk: aws_config::SdkConfig,
    clients: Arc<Mutex<HashMap<String, aws_sdk_apigatewaymanagement::Client>>>,
}

impl Poster {
    /// Clients built from `sdk` (credentials, region, timeouts).
    pub fn new(sdk: aws_config::SdkConfig) -> Self {
        Self {
            sdk,
            clients: Arc::default(),
        }
    }

    fn client(&self, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        let mut clients = match self.clients.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                aws_sdk_apigatewaymanagement::Client::from_conf(
                    aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
                        .endpoint_url(endpoint)
                        .build(),
                )
            })
            .clone()
    }

    /// Posts `data` to `connection_id` at `endpoint`.
    pub async fn post(&self, endpoint: &str, connection_id: &str, data: Vec<u8>) -> Delivery {
        let result = self
            .client(endpoint)
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => Delivery::Delivered,
            Err(err) => match err.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => Delivery::Gone,
                _ => Delivery::Failed(DisplayErrorContext(err).to_string()),
            },
        }
    }
}

/// `WEBSOCKET_CALLBACK_URL` when set (custom domains, the local stack), else
/// `https://{domainName}/{stage}` from the event, as API Gateway's own URL is.
pub fn management_endpoint(configured: Option<&str>, context: &WebSocketContext) -> Option<String> {
    if let Some(url) = configured {
        return Some(url.to_owned());
    }
    let domain = context.domain_name.as_deref()?;
    match context.stage.as_deref() {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            Some(format!("https://{domain}/{stage}"))
        }
        _ => Some(format!("https://{domain}")),
    }
}
