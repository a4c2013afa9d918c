//! The state every router shares: configuration, the DynamoDB client, token verification.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, ConfigError};

/// Cloned into every request; cheap (all `Arc`s inside).
#[derive(Debug, Clone)]
pub struct AppState {
    /// Settings read once at cold start.
    pub config: Arc<Config>,
    /// DynamoDB, honouring `AWS_ENDPOINT_URL_DYNAMODB` for the local stand-in.
    pub db: aws_sdk_dynamodb::Client,
    /// Verifies access tokens with the accounts function's public keys.
    pub jwt: Arc<crate::jwt::TokenVerifier>,
    /// API keys resolved in the last few seconds.
    pub api_keys: Arc<crate::apikeys::KeyCache>,
}

impl AppState {
    /// Reads the environment and builds the AWS clients: the cold-start path of every function.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = load_sdk_config().await;
        Ok(Self::new(config, &sdk))
    }

    /// Builds the state from a configuration and a loaded AWS SDK configuration.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_db(config, dynamodb_client(sdk, None))
    }

    /// Builds the state around an existing DynamoDB client (the local stack and tests,
    /// which point it at the stand-in).
    pub fn with_db(config: Config, db: aws_sdk_dynamodb::Client) -> Self {
        Self {
            jwt: config.tokens.clone(),
            config: Arc::new(config),
            db,
            api_keys: Arc::default(),
        }
    }

    /// The core table's name.
    pub fn table(&self) -> &str {
        &self.config.table_name
    }
}

/// Loads the AWS SDK configuration from the standard chain (env, Lambda role), with
/// timeouts short enough that a dead dependency yields a 503, not a Lambda timeout.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .load()
        .await
}

/// A DynamoDB client with the capacity meter, at `endpoint` when given (a stand-in).
pub fn dynamodb_client(
    sdk: &aws_config::SdkConfig,
    endpoint: Option<&str>,
) -> aws_sdk_dynamodb::Client {
    let mut config =
        aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(crate::capacity::CapacityMeter);
    if let Some(url) = endpoint {
        config = config.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}
