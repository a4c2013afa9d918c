//! The contacts service: shared state, its settings and the S3 client for contact files.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use vocelio_shared::{ApiError, ApiResult, AppState};

use crate::config::ContactsConfig;

/// Everything the contacts handlers and the import worker need; cheap to clone.
#[derive(Debug, Clone)]
pub struct Contacts {
    pub app: AppState,
    pub config: Arc<ContactsConfig>,
    pub s3: aws_sdk_s3::Client,
}

impl Contacts {
    /// The service over `app`, with its settings and an S3 client.
    pub fn new(app: AppState, config: ContactsConfig, s3: aws_sdk_s3::Client) -> Self {
        Self {
            app,
            config: Arc::new(config),
            s3,
        }
    }

    /// The bucket of contact files.
    pub fn bucket(&self) -> &str {
        &self.config.upload_bucket
    }

    /// How long presigned URLs live.
    pub fn presigning(&self) -> ApiResult<PresigningConfig> {
        PresigningConfig::expires_in(Duration::from_secs(self.config.url_seconds))
            .map_err(ApiError::internal)
    }

    /// A presigned GET of `key` (a download the browser fetches from S3 directly).
    pub async fn download_url(&self, key: &str, file_name: &str) -> ApiResult<String> {
        let request = self
            .s3
            .get_object()
            .bucket(self.bucket())
            .key(key)
            .response_content_disposition(format!(
                "attachment; filename=\"{}\"",
                file_name.replace(['"', '\\', '\r', '\n'], "_")
            ))
            .presigned(self.presigning()?)
            .await
            .map_err(s3_error("presign GetObject"))?;
        Ok(request.uri().to_owned())
    }
}

/// Maps an S3 failure to a 503 (the store did not answer; retry), logging the cause.
pub fn s3_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &'static str,
) -> impl Fn(aws_sdk_s3::error::SdkError<E, R>) -> ApiError {
    move |e| {
        ApiError::Unavailable(format!(
            "S3 {operation}: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ))
    }
}

/// Reads the environment and builds the state, the settings and the S3 client: the cold-start
/// path of the contacts functions.
pub async fn from_env() -> Result<(AppState, Contacts), Box<dyn std::error::Error + Send + Sync>> {
    let config = vocelio_shared::config::Config::from_env()?;
    let contacts_config = ContactsConfig::from_env()?;
    let sdk = vocelio_shared::state::load_sdk_config().await;
    let state = AppState::new(config, &sdk);
    // Path-style addressing for S3-compatible stores (MinIO, moto): AWS_S3_FORCE_PATH_STYLE.
    let path_style = std::env::var("AWS_S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build(),
    );
    Ok((state.clone(), Contacts::new(state, contacts_config, s3)))
}
