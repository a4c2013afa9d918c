//! `/ws/tts`: text in, audio out over an API Gateway WebSocket API.
//!
//! Client → server, JSON text frames: `{"text": "Hello there. ", "voice_id"?, "provider"?,
//! "format"?, "language"?, "speed"?, "pitch"?, "volume"?, "call_id"?, "customer_id"?,
//! "flush"?: true}` (settings persist for the connection; `{"text": ""}` or `flush` speaks
//! what is buffered), `{"type": "ping"}`.
//!
//! Server → client, JSON text frames: `{"type": "audio", "seq", "audio": <base64>, "format",
//! "provider", "voice_id"}` (at most 22 KiB of audio each), then `{"type": "final",
//! "isFinal": true, "chunks", "characters", "cached", ...}`; `{"type": "buffered",
//! "characters"}` when text waits for the end of its sentence; `{"type": "error", "code",
//! "error"}` on a bad message or a provider failure — the socket stays open.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use vocelio_shared::dynamo::{n, s, sdk_error};
use vocelio_shared::error::{ApiError, ApiResult};
use vocelio_shared::keys::{PK, SK};
use vocelio_shared::wsapi::{Delivery, Poster, WebSocketEvent, management_endpoint};
use vocelio_shared::{AppState, clock};

use crate::service::{SynthesizeBody, Tts};
use crate::usage::{self, UsageEntry};

/// How long a TTS connection's record lives (API Gateway closes sockets after 2 h).
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 600;
/// Audio bytes per frame: base64 (4/3) plus the JSON around it stays under API Gateway's
/// 32 KiB frame size.
pub const AUDIO_BYTES_PER_FRAME: usize = 22 * 1024;
/// Text buffered while waiting for a sentence end, before it is spoken anyway.
pub const MAX_PENDING_CHARACTERS: usize = 1000;
/// The settings a message may carry; they persist for the connection.
const SETTINGS: [&str; 10] = [
    "voice_id",
    "provider",
    "tier",
    "language",
    "speed",
    "pitch",
    "volume",
    "format",
    "call_id",
    "customer_id",
];

/// The TTS WebSocket function.
#[derive(Debug, Clone)]
pub struct TtsSocket {
    app: AppState,
    tts: Tts,
    poster: Poster,
}

fn connection_pk(connection_id: &str) -> String {
    format!("TTSWS#{connection_id}")
}

const CONNECTION_SK: &str = "CONNECTION";

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

fn error_frame(error: &ApiError) -> Value {
    let mut frame = error.body();
    frame["type"] = "error".into();
    frame
}

/// The connection's record: who it is, where to reach it, what is buffered.
#[derive(Debug, Clone)]
struct Connection {
    tenant: vocelio_shared::ids::TenantId,
    endpoint: String,
    pending: String,
    settings: Map<String, Value>,
}

/// Splits `text` into what can be spoken now (complete sentences) and what waits.
pub fn split_pending(text: &str, flush: bool) -> (String, String) {
    if flush || text.chars().count() > MAX_PENDING_CHARACTERS {
        return (text.trim().to_owned(), String::new());
    }
    let cut = text
        .char_indices()
        .rev()
        .find(|(i, c)| {
            matches!(c, '.' | '!' | '?' | ';' | '\n')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8());
    match cut {
        Some(at) => (text[..at].trim().to_owned(), text[at..].to_owned()),
        None => (String::new(), text.to_owned()),
    }
}

impl TtsSocket {
    /// The function over the shared state and the TTS service.
    pub fn new(app: AppState, tts: Tts, sdk: &aws_config::SdkConfig) -> Self {
        Self {
            app,
            tts,
            poster: Poster::new(sdk.clone()),
        }
    }

    /// Handles one API Gateway WebSocket event; returns the proxy response.
    pub async fn handle(&self, event: Value) -> Value {
        let event: WebSocketEvent = match serde_json::from_value(event) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "not a WebSocket event");
                return response(400, None);
            }
        };
        let result = match event.request_context.route_key.as_str() {
            "$connect" => self.connect(&event).await,
            "$disconnect" => self.disconnect(&event).await,
            _ => self.message(&event).await,
        };
        result.unwrap_or_else(|err| response(err.status().as_u16(), Some(err.body())))
    }

    async fn connect(&self, event: &WebSocketEvent) -> ApiResult<Value> {
        let params = event.query_string_parameters.clone().unwrap_or_default();
        let token = params
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("pass the access token as the token query parameter".into())
            })?;
        let user =
            vocelio_shared::auth::authorize_stream(&self.app, token, "/stream/synthesize").await?;
        let endpoint = management_endpoint(
            self.app.config.websocket_callback_url.as_deref(),
            &event.request_context,
        )
        .ok_or_else(|| ApiError::internal("the $connect event has no domainName"))?;
        let expires_at = clock::now().unix_timestamp() + CONNECTION_TTL_SECONDS;
        self.app
            .db
            .put_item()
            .table_name(self.app.table())
            .item(PK, s(connection_pk(&event.request_context.connection_id)))
            .item(SK, s(CONNECTION_SK))
            .item("entity", s("tts_socket"))
            .item("tenant_id", s(user.tenant.as_str()))
            .item("user_id", s(&user.user_id))
            .item("endpoint", s(endpoint))
            .item("pending", s(""))
            .item("settings", s("{}"))
            .item("expires_at", n(expires_at))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(response(200, None))
    }

    async fn disconnect(&self, event: &WebSocketEvent) -> ApiResult<Value> {
        self.app
            .db
            .delete_item()
            .table_name(self.app.table())
            .key(PK, s(connection_pk(&event.request_context.connection_id)))
            .key(SK, s(CONNECTION_SK))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(response(200, None))
    }

    async fn connection(&self, connection_id: &str) -> ApiResult<Option<Connection>> {
        let item = self
            .app
            .db
            .get_item()
            .table_name(self.app.table())
            .key(PK, s(connection_pk(connection_id)))
            .key(SK, s(CONNECTION_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?
            .item;
        let Some(item) = item else { return Ok(None) };
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let tenant = vocelio_shared::ids::TenantId::parse(&text("tenant_id"))
            .map_err(|_| ApiError::internal("a TTS connection without a tenant"))?;
        Ok(Some(Connection {
            tenant,
            endpoint: text("endpoint"),
            pending: text("pending"),
            settings: serde_json::from_str(&text("settings")).unwrap_or_default(),
        }))
    }

    async fn send(&self, connection: &Connection, connection_id: &str, frame: &Value) -> bool {
        match self
            .poster
            .post(
                &connection.endpoint,
                connection_id,
                frame.to_string().into_bytes(),
            )
            .await
        {
            Delivery::Delivered => true,
            Delivery::Gone => false,
            Delivery::Failed(why) => {
                tracing::warn!(connection_id, error = %why, "TTS frame not delivered");
                false
            }
        }
    }

    async fn message(&self, event: &WebSocketEvent) -> ApiResult<Value> {
        let connection_id = &event.request_context.connection_id;
        let Some(mut connection) = self.connection(connection_id).await? else {
            return Ok(response(410, None));
        };
        let raw = event.body.clone().unwrap_or_default();
        let text = if event.is_base64_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(raw.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        } else {
            Some(raw)
        };
        let message: Option<Map<String, Value>> = text.and_then(|t| serde_json::from_str(&t).ok());
        let Some(message) = message else {
            let err = ApiError::bad_request(
                "invalid_json",
                "send JSON text frames: {\"text\": \"...\", \"voice_id\": \"...\"}",
            );
            self.send(&connection, connection_id, &error_frame(&err))
                .await;
            return Ok(response(200, None));
        };
        if message.get("type").and_then(Value::as_str) == Some("ping") {
            let pong = json!({"type": "pong", "at": clock::rfc3339(clock::now())});
            self.send(&connection, connection_id, &pong).await;
            return Ok(response(200, None));
        }
        let piece = match message.get("text") {
            Some(Value::String(text)) => text.clone(),
            None | Some(Value::Null) => String::new(),
            Some(_) => {
                let err = ApiError::field("text", "must be a string");
                self.send(&connection, connection_id, &error_frame(&err))
                    .await;
                return Ok(response(200, None));
            }
        };
        let mut settings = connection.settings.clone();
        for name in SETTINGS {
            if let Some(value) = message.get(name) {
                settings.insert(name.to_owned(), value.clone());
            }
        }
        // Settings are checked before they are kept: a bad one never sticks to the socket.
        if let Err(e) = serde_json::from_value::<SynthesizeBody>(Value::Object(settings.clone())) {
            let err = ApiError::field("settings", format!("a setting has the wrong type: {e}"));
            self.send(&connection, connection_id, &error_frame(&err))
                .await;
            return Ok(response(200, None));
        }
        connection.settings = settings;
        let flush = message.get("flush").and_then(Value::as_bool) == Some(true) || piece.is_empty();
        let combined = format!("{}{piece}", connection.pending);
        let (speak, rest) = split_pending(&combined, flush);
        self.app
            .db
            .update_item()
            .table_name(self.app.table())
            .key(PK, s(connection_pk(connection_id)))
            .key(SK, s(CONNECTION_SK))
            .update_expression("SET pending = :pending, settings = :settings")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":pending", AttributeValue::S(rest.clone()))
            .expression_attribute_values(
                ":settings",
                s(Value::Object(connection.settings.clone()).to_string()),
            )
            .send()
            .await
            .map_err(sdk_error)?;
        if speak.is_empty() {
            if !rest.is_empty() {
                let frame = json!({"type": "buffered", "characters": rest.chars().count()});
                self.send(&connection, connection_id, &frame).await;
            }
            return Ok(response(200, None));
        }
        if let Err(err) = self.speak(&connection, connection_id, speak).await {
            self.send(&connection, connection_id, &error_frame(&err))
                .await;
        }
        Ok(response(200, None))
    }

    async fn speak(
        &self,
        connection: &Connection,
        connection_id: &str,
        text: String,
    ) -> ApiResult<()> {
        let mut body = connection.settings.clone();
        body.insert("text".to_owned(), text.into());
        let body: SynthesizeBody = serde_json::from_value(Value::Object(body)).map_err(|e| {
            ApiError::field("settings", format!("a setting has the wrong type: {e}"))
        })?;
        let mut plan = self.tts.plan(body)?;
        plan.cache_scope = connection.tenant.as_str().to_owned();
        let clip = self.tts.stream(&plan).await?;
        let mut chunks = clip.chunks;
        let mut seq = 0usize;
        let mut audio = Vec::new();
        let mut failure = None;
        'stream: while let Some(chunk) = chunks.next().await {
            let bytes = match chunk {
                Ok(bytes) => bytes,
                Err(e) => {
                    failure = Some(e);
                    break 'stream;
                }
            };
            audio.extend_from_slice(&bytes);
            for piece in bytes.chunks(AUDIO_BYTES_PER_FRAME) {
                let frame = json!({
                    "type": "audio",
                    "seq": seq,
                    "audio": base64::engine::general_purpose::STANDARD.encode(piece),
                    "format": clip.format.as_str(),
                    "provider": clip.provider.as_str(),
                    "voice_id": clip.voice_id,
                });
                if !self.send(connection, connection_id, &frame).await {
                    break 'stream;
                }
                seq += 1;
            }
        }
        let seconds = clip.duration_seconds.unwrap_or_else(|| {
            crate::audio::duration_seconds(
                &crate::service::finalize(clip.format, audio),
                clip.format.encoding(),
            )
            .unwrap_or(0.0)
        });
        let characters = plan.text.chars().count();
        let cost = if clip.cached {
            0.0
        } else {
            self.tts.streamed_cost(clip.provider, seconds)
        };
        let entry = UsageEntry {
            characters,
            audio_seconds: seconds,
            cost,
            cached: clip.cached,
            provider: clip.provider.as_str(),
        };
        if let Err(e) = usage::record(
            &self.app,
            &connection.tenant,
            plan.call_id.as_deref(),
            plan.customer_id.as_deref(),
            &entry,
        )
        .await
        {
            tracing::error!(error = %e, "usage not recorded");
        }
        if let Some(e) = failure {
            return Err(crate::service::provider_error(e));
        }
        let frame = json!({
            "type": "final",
            "isFinal": true,
            "chunks": seq,
            "characters": characters,
            "duration_seconds": (seconds * 1000.0).round() / 1000.0,
            "cached": clip.cached,
            "cost": cost,
            "format": clip.format.as_str(),
            "provider": clip.provider.as_str(),
            "voice_id": clip.voice_id,
        });
        self.send(connection, connection_id, &frame).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_waits_for_the_end_of_its_sentence_unless_flushed() {
        assert_eq!(
            split_pending("Hello there. How are", false),
            ("Hello there.".to_owned(), " How are".to_owned())
        );
        assert_eq!(
            split_pending("No end yet", false),
            (String::new(), "No end yet".to_owned())
        );
        assert_eq!(
            split_pending("No end yet", true),
            ("No end yet".to_owned(), String::new())
        );
        let long = "word ".repeat(300);
        assert_eq!(split_pending(&long, false).1, "");
    }
}
