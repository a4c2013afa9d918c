//! The ElevenLabs fake: `GET /v1/voices`, `POST /v1/text-to-speech/{voice_id}` and
//! `POST /v1/text-to-speech/{voice_id}/stream`, validated against the saved OpenAPI spec
//! (`shared/contracts/elevenlabs/openapi.json`) the way its FastAPI/pydantic server does:
//! spec violations are a 422 with a `detail` array, the service's own refusals a
//! `{"detail":{"status","message"}}` object.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tts::audio::Encoding;
use tts::local_engine::LocalEngine;
use tts::ssml::Prosody;

use super::{ELEVENLABS_FAKE_KEY, FakeControl, Piece, RunningFake, can_encode, sentences, speak};

/// The `output_format` enum of the text-to-speech operations.
pub const OUTPUT_FORMATS: &[&str] = &[
    "mp3_22050_32",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
    "pcm_48000",
    "ulaw_8000",
    "alaw_8000",
    "opus_48000_32",
    "opus_48000_64",
    "opus_48000_96",
    "opus_48000_128",
    "opus_48000_192",
];

/// The default `output_format`.
pub const DEFAULT_OUTPUT_FORMAT: &str = "mp3_44100_128";
/// The default `model_id`.
pub const DEFAULT_MODEL: &str = "eleven_multilingual_v2";

/// Text-to-speech models and their per-request character limits.
pub const MODELS: &[(&str, usize)] = &[
    ("eleven_multilingual_v2", 10_000),
    ("eleven_flash_v2_5", 40_000),
    ("eleven_turbo_v2_5", 40_000),
    ("eleven_flash_v2", 30_000),
    ("eleven_turbo_v2", 30_000),
    ("eleven_v3", 5_000),
    ("eleven_monolingual_v1", 10_000),
    ("eleven_multilingual_v1", 10_000),
];

/// The models that accept `language_code` (the spec: "Currently only Turbo v2.5 and Flash
/// v2.5 support language enforcement. For other models, an error will be returned").
const LANGUAGE_MODELS: [&str; 2] = ["eleven_flash_v2_5", "eleven_turbo_v2_5"];

/// ElevenLabs' documented `voice_settings.speed` range.
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.7..=1.2;

/// A premade voice: (voice_id, name, accent, description, age, gender, use_case).
type PremadeVoice = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// ElevenLabs' premade voices the fake knows.
#[rustfmt::skip]
const VOICES: &[PremadeVoice] = &[
    ("21m00Tcm4TlvDq8ikWAM", "Rachel", "american", "calm", "young", "female", "narration"),
    ("AZnzlk1XvdvUeBnXmlld", "Domi", "american", "strong", "young", "female", "narration"),
    ("EXAVITQu4vr4xnkGhzXK", "Bella", "american", "soft", "young", "female", "narration"),
    ("ErXwobaYiN019PkySvjV", "Antoni", "american", "well-rounded", "young", "male", "narration"),
    ("MF3mGyEYCl7XYWbV9V6O", "Elli", "american", "emotional", "young", "female", "narration"),
    ("TxGEqnHWrfWFTfGW9XjX", "Josh", "american", "deep", "young", "male", "narration"),
    ("VR6AewLTigWG4xSOukaG", "Arnold", "american", "crisp", "middle aged", "male", "narration"),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "american", "deep", "middle aged", "male", "narration"),
    ("yoZ06aMxZJJ28mfd3POQ", "Sam", "american", "raspy", "young", "male", "narration"),
    ("JBFqnCBsd6RMkjVDRZzb", "George", "british", "warm", "middle aged", "male", "narration"),
    ("Xb7hH8MSUJpSbSDYk0k2", "Alice", "british", "confident", "middle aged", "female", "news"),
];

fn voice_json(voice: &PremadeVoice) -> Value {
    let (id, name, accent, description, age, gender, use_case) = *voice;
    json!({
        "voice_id": id,
        "name": name,
        "samples": null,
        "category": "premade",
        "fine_tuning": null,
        "labels": {
            "accent": accent,
            "description": description,
            "age": age,
            "gender": gender,
            "use_case": use_case,
        },
        "description": null,
        "preview_url": format!(
            "https://storage.googleapis.com/eleven-public-prod/premade/voices/{id}/preview.mp3"
        ),
        "available_for_tiers": [],
        "settings": null,
        "sharing": null,
        "high_quality_base_model_ids": ["eleven_multilingual_v2", "eleven_turbo_v2_5", "eleven_flash_v2_5"],
        "verified_languages": [],
        "safety_control": null,
        "voice_verification": null,
        "permission_on_resource": null,
        "is_owner": false,
        "is_legacy": false,
        "is_mixed": false,
        "created_at_unix": null,
    })
}

/// The espeak-ng voice for a premade voice's accent, or for an enforced language.
fn espeak_voice(accent: &str, language_code: Option<&str>) -> &'static str {
    match language_code {
        Some("es") => "es",
        Some("fr") => "fr",
        Some("de") => "de",
        Some("it") => "it",
        Some("pt") => "pt",
        Some("nl") => "nl",
        Some("pl") => "pl",
        _ if accent == "british" => "en-gb",
        _ => "en-us",
    }
}

#[derive(Clone)]
struct ElevenState {
    engine: LocalEngine,
    control: FakeControl,
}

/// Starts the ElevenLabs fake on a free loopback port; its base URL stands for
/// `https://api.elevenlabs.io`.
pub async fn start_elevenlabs(
    engine: LocalEngine,
) -> std::io::Result<(RunningFake, tokio::task::JoinHandle<()>)> {
    let control = FakeControl::default();
    let state = ElevenState {
        engine,
        control: control.clone(),
    };
    let router = Router::new()
        .route("/v1/voices", get(voices))
        .route("/v1/text-to-speech/{voice_id}", post(convert))
        .route("/v1/text-to-speech/{voice_id}/stream", post(stream))
        .with_state(state)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({"detail": "Method Not Allowed"})),
            )
        })
        .merge(super::control_routes(control.clone()))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"detail": "Not Found"})),
            )
        });
    let (base_url, handle) = super::serve(router).await?;
    Ok((RunningFake { base_url, control }, handle))
}

/// `{"detail":{"status":…,"message":…}}` with `status`.
fn refusal(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"detail": {"status": code, "message": message.into()}})),
    )
        .into_response()
}

/// ElevenLabs' answer for an injected error status.
fn error(status: StatusCode) -> Response {
    match status.as_u16() {
        401 => invalid_key(),
        429 => refusal(
            status,
            "too_many_concurrent_requests",
            "Too many concurrent requests. Your current subscription allows a limited number of concurrent requests.",
        ),
        503 => refusal(
            status,
            "system_busy",
            "The system is experiencing heavy traffic, please try again later.",
        ),
        500 => refusal(
            status,
            "internal_server_error",
            "An internal server error occurred.",
        ),
        _ => refusal(
            status,
            "error",
            status.canonical_reason().unwrap_or("Error").to_owned(),
        ),
    }
}

fn invalid_key() -> Response {
    refusal(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "Invalid API key",
    )
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("xi-api-key")
        .is_some_and(|key| key.as_bytes() == ELEVENLABS_FAKE_KEY.as_bytes())
}

/// A pydantic validation error item.
fn problem(loc: &[Value], kind: &str, msg: impl Into<String>, input: &Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg.into(), "input": input})
}

/// Why a request was refused: spec violations (422, a `detail` array) or the service's own
/// refusal (a `detail` object).
enum Refusal {
    Invalid(Vec<Value>),
    Detail {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Invalid(problems) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "detail": problems })),
            )
                .into_response(),
            Refusal::Detail {
                status,
                code,
                message,
            } => refusal(status, code, message),
        }
    }
}

fn unprocessable(problems: Vec<Value>) -> Refusal {
    Refusal::Invalid(problems)
}

/// A 400 `{"detail":{"status":code,"message":…}}`.
fn bad_request(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Detail {
        status: StatusCode::BAD_REQUEST,
        code,
        message: message.into(),
    }
}

/// The query string as pairs (a malformed one is a 422 on the query).
type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn query_pairs(query: QueryPairs) -> Result<Vec<(String, String)>, Refusal> {
    query.map(|Query(pairs)| pairs).map_err(|rejection| {
        unprocessable(vec![problem(
            &[json!("query")],
            "value_error",
            rejection.body_text(),
            &Value::Null,
        )])
    })
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Pydantic's lax booleans from a string.
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn check_query_bool(pairs: &[(String, String)], name: &str, problems: &mut Vec<Value>) {
    if let Some(value) = last(pairs, name)
        && parse_bool(value).is_none()
    {
        problems.push(problem(
            &[json!("query"), json!(name)],
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input",
            &json!(value),
        ));
    }
}

async fn voices(
    State(state): State<ElevenState>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    state.control.count_voice_list();
    if let Some(status) = state.control.take_failure() {
        return error(status);
    }
    if !authorized(&headers) {
        return invalid_key();
    }
    let pairs = match query_pairs(query) {
        Ok(pairs) => pairs,
        Err(refused) => return refused.into_response(),
    };
    let mut problems = Vec::new();
    check_query_bool(&pairs, "show_legacy", &mut problems);
    if !problems.is_empty() {
        return unprocessable(problems).into_response();
    }
    let voices: Vec<Value> = VOICES.iter().map(voice_json).collect();
    axum::Json(json!({ "voices": voices })).into_response()
}

async fn convert(
    State(state): State<ElevenState>,
    Path(voice_id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
    body: Bytes,
) -> Response {
    text_to_speech(state, voice_id, headers, query, body, false).await
}

async fn stream(
    State(state): State<ElevenState>,
    Path(voice_id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
    body: Bytes,
) -> Response {
    text_to_speech(state, voice_id, headers, query, body, true).await
}

async fn text_to_speech(
    state: ElevenState,
    voice_id: String,
    headers: HeaderMap,
    query: QueryPairs,
    body: Bytes,
    streaming: bool,
) -> Response {
    state.control.count_synthesis();
    if let Some(status) = state.control.take_failure() {
        return error(status);
    }
    if !authorized(&headers) {
        return invalid_key();
    }
    let request = match check_request(&voice_id, &headers, query, &body) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    let characters = request.characters;
    match speak(
        state.engine.clone(),
        request.pieces,
        request.encoding,
        f64::INFINITY,
        !streaming,
    )
    .await
    {
        Ok(audio) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "audio/mpeg".to_owned()),
                (
                    header::HeaderName::from_static("request-id"),
                    uuid::Uuid::new_v4().to_string(),
                ),
                (
                    header::HeaderName::from_static("x-character-count"),
                    characters.to_string(),
                ),
            ],
            audio,
        )
            .into_response(),
        Err(failure) => {
            tracing::warn!(%failure, "the ElevenLabs fake could not speak");
            error(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// A request that passed every check.
struct Checked {
    encoding: Encoding,
    pieces: Vec<Piece>,
    characters: usize,
}

/// FastAPI's checks (all 422 problems at once), then the service's own.
fn check_request(
    voice_id: &str,
    headers: &HeaderMap,
    query: QueryPairs,
    body: &[u8],
) -> Result<Checked, Refusal> {
    let pairs = query_pairs(query)?;
    let mut problems = Vec::new();
    let output_format = last(&pairs, "output_format").unwrap_or(DEFAULT_OUTPUT_FORMAT);
    if !OUTPUT_FORMATS.contains(&output_format) {
        problems.push(json!({
            "type": "enum",
            "loc": ["query", "output_format"],
            "msg": format!("Input should be {}", expected(OUTPUT_FORMATS)),
            "input": output_format,
            "ctx": {"expected": expected(OUTPUT_FORMATS)},
        }));
    }
    check_query_bool(&pairs, "enable_logging", &mut problems);
    if let Some(value) = last(&pairs, "optimize_streaming_latency")
        && value.trim().parse::<i64>().is_err()
    {
        problems.push(problem(
            &[json!("query"), json!("optimize_streaming_latency")],
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
            &json!(value),
        ));
    }
    let fields = body_object(headers, body, &mut problems);
    if !problems.is_empty() {
        return Err(unprocessable(problems));
    }
    let fields = fields.unwrap_or_default();
    let text = fields.get("text").and_then(Value::as_str).unwrap_or("");
    let model_id = fields
        .get("model_id")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL);
    let language_code = fields.get("language_code").and_then(Value::as_str);

    let Some((_, _, accent, ..)) = VOICES.iter().find(|v| v.0 == voice_id) else {
        return Err(bad_request(
            "voice_not_found",
            format!("A voice with voice_id '{voice_id}' was not found."),
        ));
    };
    let Some(&(_, limit)) = MODELS.iter().find(|(name, _)| *name == model_id) else {
        return Err(bad_request(
            "model_not_found",
            format!("A model with model ID {model_id} does not exist."),
        ));
    };
    if let Some(code) = language_code {
        if !LANGUAGE_MODELS.contains(&model_id) {
            return Err(bad_request(
                "unsupported_language",
                format!(
                    "Model '{model_id}' does not support language_code; only eleven_turbo_v2_5 and eleven_flash_v2_5 support language enforcement."
                ),
            ));
        }
        if code.len() != 2 || !code.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(bad_request(
                "unsupported_language",
                format!("Language code '{code}' is not an ISO 639-1 code this model supports."),
            ));
        }
    }
    let prosody = voice_settings(fields.get("voice_settings"))?;
    if text.trim().is_empty() {
        return Err(bad_request(
            "invalid_text",
            "The text must contain something to say.",
        ));
    }
    let characters = text.chars().count();
    if characters > limit {
        return Err(bad_request(
            "max_character_limit_exceeded",
            format!(
                "You are sending {characters} characters in a single request, but the maximum for {model_id} is {limit} characters."
            ),
        ));
    }
    let Some(encoding) = Encoding::from_elevenlabs_output_format(output_format)
        .filter(|encoding| can_encode(*encoding))
    else {
        return Err(bad_request(
            "unsupported_output_format",
            format!(
                "The local ElevenLabs fake cannot produce {output_format}; ask for mp3_*, pcm_* or ulaw_8000."
            ),
        ));
    };
    let voice = espeak_voice(accent, language_code);
    let pieces = sentences(text)
        .into_iter()
        .map(|text| Piece::Speak {
            text,
            voice: voice.to_owned(),
            prosody,
        })
        .collect();
    Ok(Checked {
        encoding,
        pieces,
        characters,
    })
}

/// `'a', 'b' or 'c'`, as pydantic lists expected values.
fn expected(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The JSON body as FastAPI reads it, checked against the request body schema; problems
/// are added to `problems`.
fn body_object(
    headers: &HeaderMap,
    body: &[u8],
    problems: &mut Vec<Value>,
) -> Option<Map<String, Value>> {
    if body.is_empty() {
        problems.push(problem(
            &[json!("body")],
            "missing",
            "Field required",
            &Value::Null,
        ));
        return None;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let is_json = content_type.as_deref().is_none_or(|t| {
        t.strip_prefix("application/")
            .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
    });
    let value = if is_json {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => value,
            Err(e) => {
                problems.push(json!({
                    "type": "json_invalid",
                    "loc": ["body", e.column()],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": e.to_string()},
                }));
                return None;
            }
        }
    } else {
        Value::String(String::from_utf8_lossy(body).into_owned())
    };
    let Value::Object(fields) = value else {
        problems.push(problem(
            &[json!("body")],
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
            &value,
        ));
        return None;
    };
    check_fields(&fields, problems);
    Some(fields)
}

/// The schema's field types: what pydantic (lax mode) accepts for each.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Number,
    Bool,
    Int,
    StrList,
}

fn check_value(
    value: &Value,
    kind: Kind,
    nullable: bool,
    loc: &[Value],
    problems: &mut Vec<Value>,
) {
    if value.is_null() && nullable {
        return;
    }
    let (ok, kind_name, msg) = match kind {
        Kind::Str => (
            value.is_string(),
            "string_type",
            "Input should be a valid string",
        ),
        Kind::Number => match value {
            Value::Number(_) => (true, "", ""),
            Value::String(s) => (
                s.trim().parse::<f64>().is_ok(),
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            ),
            _ => (false, "float_type", "Input should be a valid number"),
        },
        Kind::Bool => match value {
            Value::Bool(_) => (true, "", ""),
            Value::Number(n) => (
                n.as_i64().is_some_and(|n| n == 0 || n == 1),
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
            ),
            Value::String(s) => (
                parse_bool(s).is_some(),
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
            ),
            _ => (false, "bool_type", "Input should be a valid boolean"),
        },
        Kind::Int => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => (true, "", ""),
            Value::Number(n) => (
                n.as_f64().is_some_and(|f| f.fract() == 0.0),
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            ),
            Value::String(s) => (
                s.trim().parse::<i64>().is_ok(),
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            ),
            _ => (false, "int_type", "Input should be a valid integer"),
        },
        Kind::StrList => match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let mut at = loc.to_vec();
                    at.push(json!(index));
                    check_value(item, Kind::Str, false, &at, problems);
                }
                (true, "", "")
            }
            _ => (false, "list_type", "Input should be a valid list"),
        },
    };
    if !ok {
        problems.push(problem(loc, kind_name, msg, value));
    }
}

fn check_fields(fields: &Map<String, Value>, problems: &mut Vec<Value>) {
    let at = |name: &str| vec![json!("body"), json!(name)];
    match fields.get("text") {
        None => problems.push(problem(
            &at("text"),
            "missing",
            "Field required",
            &Value::Object(fields.clone()),
        )),
        Some(text) => check_value(text, Kind::Str, false, &at("text"), problems),
    }
    for (name, kind, nullable) in [
        ("model_id", Kind::Str, false),
        ("language_code", Kind::Str, true),
        ("seed", Kind::Int, true),
        ("previous_text", Kind::Str, true),
        ("next_text", Kind::Str, true),
        ("previous_request_ids", Kind::StrList, true),
        ("next_request_ids", Kind::StrList, true),
        ("use_pvc_as_ivc", Kind::Bool, false),
        ("apply_language_text_normalization", Kind::Bool, false),
    ] {
        if let Some(value) = fields.get(name) {
            check_value(value, kind, nullable, &at(name), problems);
        }
    }
    if let Some(value) = fields.get("apply_text_normalization")
        && !matches!(value.as_str(), Some("auto" | "on" | "off"))
    {
        problems.push(json!({
            "type": "enum",
            "loc": at("apply_text_normalization"),
            "msg": "Input should be 'auto', 'on' or 'off'",
            "input": value,
            "ctx": {"expected": "'auto', 'on' or 'off'"},
        }));
    }
    match fields.get("voice_settings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(settings)) => {
            for (name, kind) in [
                ("stability", Kind::Number),
                ("similarity_boost", Kind::Number),
                ("style", Kind::Number),
                ("speed", Kind::Number),
                ("use_speaker_boost", Kind::Bool),
            ] {
                if let Some(value) = settings.get(name) {
                    let loc = [json!("body"), json!("voice_settings"), json!(name)];
                    check_value(value, kind, true, &loc, problems);
                }
            }
        }
        Some(other) => problems.push(problem(
            &at("voice_settings"),
            "model_type",
            "Input should be a valid dictionary or instance of VoiceSettingsResponseModel",
            other,
        )),
    }
    match fields.get("pronunciation_dictionary_locators") {
        None | Some(Value::Null) => {}
        Some(Value::Array(locators)) => {
            for (index, locator) in locators.iter().enumerate() {
                let loc = vec![
                    json!("body"),
                    json!("pronunciation_dictionary_locators"),
                    json!(index),
                ];
                let Value::Object(locator) = locator else {
                    problems.push(problem(
                        &loc,
                        "model_type",
                        "Input should be a valid dictionary or instance of PronunciationDictionaryVersionLocatorRequestModel",
                        locator,
                    ));
                    continue;
                };
                let field = |name: &str| {
                    let mut at = loc.clone();
                    at.push(json!(name));
                    at
                };
                match locator.get("pronunciation_dictionary_id") {
                    None => problems.push(problem(
                        &field("pronunciation_dictionary_id"),
                        "missing",
                        "Field required",
                        &Value::Object(locator.clone()),
                    )),
                    Some(id) => check_value(
                        id,
                        Kind::Str,
                        false,
                        &field("pronunciation_dictionary_id"),
                        problems,
                    ),
                }
                if let Some(version) = locator.get("version_id") {
                    check_value(version, Kind::Str, true, &field("version_id"), problems);
                }
            }
        }
        Some(other) => problems.push(problem(
            &at("pronunciation_dictionary_locators"),
            "list_type",
            "Input should be a valid list",
            other,
        )),
    }
}

/// A number from a value that passed `Kind::Number`.
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The documented ranges of `voice_settings`, and the prosody it asks for.
fn voice_settings(settings: Option<&Value>) -> Result<Prosody, Refusal> {
    let mut prosody = Prosody::default();
    let Some(settings) = settings.and_then(Value::as_object) else {
        return Ok(prosody);
    };
    for name in ["stability", "similarity_boost", "style"] {
        if let Some(value) = number(settings.get(name))
            && !(0.0..=1.0).contains(&value)
        {
            return Err(bad_request(
                "invalid_voice_settings",
                format!("voice_settings.{name} must be between 0 and 1, got {value}."),
            ));
        }
    }
    if let Some(speed) = number(settings.get("speed")) {
        if !SPEED_RANGE.contains(&speed) {
            return Err(bad_request(
                "invalid_voice_settings",
                format!(
                    "voice_settings.speed must be between {} and {}, got {speed}.",
                    SPEED_RANGE.start(),
                    SPEED_RANGE.end()
                ),
            ));
        }
        prosody.speed = speed;
    }
    Ok(prosody)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(body: Value) -> Vec<Value> {
        let mut problems = Vec::new();
        let bytes = serde_json::to_vec(&body).expect("serializes");
        body_object(&HeaderMap::new(), &bytes, &mut problems);
        problems
    }

    #[test]
    fn the_body_schema_is_enforced_like_pydantic() {
        assert!(problems_of(json!({"text": "Hi", "model_id": "eleven_flash_v2_5", "voice_settings": {"speed": 1.1, "use_speaker_boost": true}, "seed": 3})).is_empty());
        let missing = problems_of(json!({"model_id": "x"}));
        assert_eq!(missing[0]["loc"], json!(["body", "text"]));
        assert_eq!(missing[0]["type"], "missing");
        let wrong = problems_of(
            json!({"text": 5, "voice_settings": {"stability": "high"}, "seed": 1.5, "apply_text_normalization": "maybe"}),
        );
        let types: Vec<&str> = wrong.iter().filter_map(|p| p["type"].as_str()).collect();
        assert_eq!(
            types,
            vec!["string_type", "int_from_float", "enum", "float_parsing"]
        );
        assert_eq!(
            wrong[3]["loc"],
            json!(["body", "voice_settings", "stability"])
        );
        let not_object = problems_of(json!(["text"]));
        assert_eq!(not_object[0]["loc"], json!(["body"]));
    }

    #[test]
    fn expected_values_read_like_pydantics() {
        assert_eq!(expected(&["a", "b", "c"]), "'a', 'b' or 'c'");
        assert_eq!(expected(&["a"]), "'a'");
    }
}
