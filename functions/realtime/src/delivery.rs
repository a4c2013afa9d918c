//! Sending frames to connections through the API Gateway management API
//! (`PostToConnection`), one SDK client per endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_apigatewaymanagement::error::DisplayErrorContext;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

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
