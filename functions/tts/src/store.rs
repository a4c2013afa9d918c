//! The audio cache in S3: one object per content-addressed key, its facts in object
//! metadata, read back by GetObject / HeadObject and handed out by presigned URL only.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::formats::AudioFormat;
use crate::provider::ProviderKind;

/// What we know about a stored clip (kept as S3 user metadata).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipFacts {
    pub provider: ProviderKind,
    pub voice_id: String,
    pub format: AudioFormat,
    pub duration_seconds: f64,
    pub characters: usize,
    pub bytes: usize,
}

/// S3 failed; the request can be retried.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation}: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    pub detail: String,
}

fn store_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &'static str,
) -> impl Fn(aws_sdk_s3::error::SdkError<E, R>) -> StoreError {
    move |e| StoreError {
        operation,
        detail: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

/// The bucket of synthesized audio.
#[derive(Debug, Clone)]
pub struct AudioStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
    url_lifetime: Duration,
}

impl AudioStore {
    /// The store in `bucket`; presigned URLs live `url_lifetime`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, url_lifetime: Duration) -> Self {
        Self {
            s3,
            bucket: bucket.to_owned(),
            url_lifetime,
        }
    }

    /// The clip at `key` with its facts, or `None` when it was never stored.
    pub async fn get(&self, key: &str) -> Result<Option<(Bytes, ClipFacts)>, StoreError> {
        let result = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(store_error("GetObject")(e)),
        };
        let facts = output.metadata().and_then(facts_from_metadata);
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError {
                operation: "GetObject",
                detail: e.to_string(),
            })?
            .into_bytes();
        // An object without our metadata was not written by us: treat it as absent.
        Ok(facts.map(|mut facts| {
            facts.bytes = body.len();
            (body, facts)
        }))
    }

    /// The facts of the clip at `key`, without its bytes.
    pub async fn head(&self, key: &str) -> Result<Option<ClipFacts>, StoreError> {
        let result = self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .metadata()
                .and_then(facts_from_metadata)
                .map(|mut f| {
                    f.bytes = output.content_length().unwrap_or_default().max(0) as usize;
                    f
                })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(store_error("HeadObject")(e)),
        }
    }

    /// Stores a whole clip in one PutObject (a clip is either fully there or absent).
    pub async fn put(&self, key: &str, audio: Bytes, facts: &ClipFacts) -> Result<(), StoreError> {
        let mut request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(facts.format.content_type())
            .cache_control("private, max-age=31536000, immutable")
            .body(ByteStream::from(audio));
        for (name, value) in metadata_of(facts) {
            request = request.metadata(name, value);
        }
        request.send().await.map_err(store_error("PutObject"))?;
        Ok(())
    }

    /// A presigned GET URL for `key`, valid for the configured lifetime.
    pub async fn url(&self, key: &str) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(self.url_lifetime).map_err(|e| StoreError {
            operation: "presign",
            detail: e.to_string(),
        })?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(store_error("presign"))?;
        Ok(request.uri().to_owned())
    }
}

fn metadata_of(facts: &ClipFacts) -> [(&'static str, String); 5] {
    [
        ("provider", facts.provider.as_str().to_owned()),
        ("voice-id", facts.voice_id.clone()),
        ("format", facts.format.as_str().to_owned()),
        ("duration-seconds", format!("{:.3}", facts.duration_seconds)),
        ("characters", facts.characters.to_string()),
    ]
}

fn facts_from_metadata(metadata: &std::collections::HashMap<String, String>) -> Option<ClipFacts> {
    Some(ClipFacts {
        provider: ProviderKind::parse(metadata.get("provider")?)?,
        voice_id: metadata.get("voice-id")?.clone(),
        format: AudioFormat::parse(metadata.get("format")?)?,
        duration_seconds: metadata.get("duration-seconds")?.parse().ok()?,
        characters: metadata.get("characters")?.parse().ok()?,
        bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_survive_the_metadata_round_trip() {
        let facts = ClipFacts {
            provider: ProviderKind::ElevenLabs,
            voice_id: "21m00Tcm4TlvDq8ikWAM".into(),
            format: AudioFormat::MulawWav,
            duration_seconds: 1.25,
            characters: 11,
            bytes: 0,
        };
        let map = metadata_of(&facts)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(facts_from_metadata(&map), Some(facts));
        assert_eq!(facts_from_metadata(&Default::default()), None);
    }
}
