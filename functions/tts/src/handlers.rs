//! Thin HTTP handlers over [`Tts`]: parse, call the domain, shape the response.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::error::{ApiError, ApiResult};
use vocelio_shared::extract::{JsonBody, QueryParams};
use vocelio_shared::ids::is_key_safe;
use vocelio_shared::{AppState, AuthUser};

use crate::provider::ProviderKind;
use crate::service::{Clip, Plan, SynthesizeBody, Tts, provider_error};
use crate::usage::{self, UsageEntry};

/// The sentence a voice preview speaks.
pub const PREVIEW_TEXT: &str =
    "Hello! Thanks for calling. This is a preview of how I will sound on your calls.";

/// Featured voices per provider, shown in `/tiers` (the full lists are `/voices/{provider}`).
fn featured(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Azure => &[
            "en-US-AriaNeural",
            "en-US-JennyNeural",
            "en-US-GuyNeural",
            "en-GB-SoniaNeural",
            "es-ES-ElviraNeural",
        ],
        ProviderKind::ElevenLabs => &[
            "21m00Tcm4TlvDq8ikWAM",
            "EXAVITQu4vr4xnkGhzXK",
            "pNInz6obpgDQGcFmaJgB",
            "TxGEqnHWrfWFTfGW9XjX",
        ],
        ProviderKind::Local => &["en-us", "en-gb", "es", "fr", "de"],
    }
}

/// `GET /tiers`.
pub async fn tiers(Extension(tts): Extension<Tts>, _user: AuthUser) -> Json<Value> {
    let configured = tts.configured();
    let mut tiers = serde_json::Map::new();
    for (name, tier) in &tts.config().tiers {
        tiers.insert(
            name.clone(),
            json!({
                "tts_provider": tier.provider.as_str(),
                "price_per_minute": tier.price_per_minute,
                "quality": tier.quality,
                "voices": featured(tier.provider),
                "voices_url": format!("/voices/{}", tier.provider.as_str()),
                "available": configured.contains(&tier.provider),
            }),
        );
    }
    Json(json!({
        "tiers": tiers,
        "default_tier": tts.config().default_tier,
        "description": "regular: Azure Speech neural voices; premium: ElevenLabs voices; local: espeak-ng on the server, no cloud keys. Prices are per minute of synthesized audio; repeated phrases are served from the cache at no provider cost.",
    }))
}

/// `GET /voices/{provider}`.
pub async fn voices(
    Extension(tts): Extension<Tts>,
    _user: AuthUser,
    Path(provider): Path<String>,
) -> ApiResult<Json<Value>> {
    let kind = ProviderKind::parse(&provider).ok_or_else(|| ApiError::NotFound {
        code: "unknown_provider",
        message: "no such provider; use azure, elevenlabs or local".into(),
    })?;
    let voices = tts.voices(kind).await.map_err(provider_error)?;
    Ok(Json(json!({
        "provider": kind.as_str(),
        "voices": voices.as_ref(),
        "count": voices.len(),
    })))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let accept = accept.to_ascii_lowercase();
            accept.contains("application/json") && !accept.contains("audio/")
        })
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

async fn count(state: &AppState, user: &AuthUser, plan: &Plan, clip: &Clip) {
    let entry = UsageEntry {
        characters: plan.text.chars().count(),
        audio_seconds: clip.facts.duration_seconds,
        cost: clip.cost,
        cached: clip.cached,
        provider: clip.facts.provider.as_str(),
    };
    if let Err(e) = usage::record(
        state,
        &user.tenant,
        plan.call_id.as_deref(),
        plan.customer_id.as_deref(),
        &entry,
    )
    .await
    {
        tracing::error!(error = %e, "usage not recorded");
    }
}

async fn respond(tts: &Tts, clip: Clip, json: bool) -> ApiResult<Response> {
    let facts = &clip.facts;
    let headers = [
        (
            HeaderName::from_static("provider"),
            header_value(facts.provider.as_str()),
        ),
        (
            HeaderName::from_static("voice-id"),
            header_value(&facts.voice_id),
        ),
        (
            HeaderName::from_static("x-audio-duration"),
            header_value(&format!("{:.3}", facts.duration_seconds)),
        ),
        (
            HeaderName::from_static("x-characters"),
            header_value(&facts.characters.to_string()),
        ),
        (
            HeaderName::from_static("x-cost"),
            header_value(&format!("{:.6}", clip.cost)),
        ),
        (
            HeaderName::from_static("x-cache"),
            HeaderValue::from_static(if clip.cached { "hit" } else { "miss" }),
        ),
    ];
    if json {
        let url = tts
            .store()
            .url(&clip.key)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let body = json!({
            "url": url,
            "key": clip.key,
            "duration_seconds": (facts.duration_seconds * 1000.0).round() / 1000.0,
            "bytes": facts.bytes,
            "provider": facts.provider.as_str(),
            "voice_id": facts.voice_id,
            "format": facts.format.as_str(),
            "content_type": facts.format.content_type(),
            "characters": facts.characters,
            "cached": clip.cached,
            "cost": clip.cost,
            "expires_in": tts.config().url_seconds,
        });
        return Ok((headers, Json(body)).into_response());
    }
    let audio = clip.audio.unwrap_or_default();
    Ok((
        headers,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(facts.format.content_type()),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400"),
            ),
        ],
        audio,
    )
        .into_response())
}

/// `POST /synthesize`: the audio, or with `Accept: application/json` a presigned URL.
pub async fn synthesize(
    State(state): State<AppState>,
    Extension(tts): Extension<Tts>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SynthesizeBody>,
) -> ApiResult<Response> {
    let mut plan = tts.plan(body)?;
    plan.cache_scope = user.tenant.as_str().to_owned();
    let json = wants_json(&headers);
    let clip = tts.synthesize(&plan, !json).await?;
    count(&state, &user, &plan, &clip).await;
    respond(&tts, clip, json).await
}

/// `?token=` for `<audio src>`, which cannot send headers.
#[derive(Debug, Deserialize)]
pub struct PreviewParams {
    token: Option<String>,
    format: Option<String>,
}

/// `GET /voices/preview/{voice_id}`: a short sample, synthesized once, then from S3.
pub async fn preview(
    State(state): State<AppState>,
    Extension(tts): Extension<Tts>,
    Path(voice_id): Path<String>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<PreviewParams>,
) -> ApiResult<Response> {
    let user = match params.token.as_deref() {
        Some(token) if !headers.contains_key(header::AUTHORIZATION) => {
            vocelio_shared::auth::authorize_stream(&state, token, "/voices/preview/{voice_id}")
                .await?
        }
        _ => {
            vocelio_shared::auth::authorize(
                &headers,
                &axum::http::Method::GET,
                "/voices/preview/{voice_id}",
                &state,
            )
            .await?
        }
    };
    let kind = ProviderKind::owning_voice(&voice_id).ok_or_else(|| ApiError::NotFound {
        code: "voice_not_found",
        message: "no provider has a voice with this id".into(),
    })?;
    let language = crate::ssml::locale_of(&voice_id).filter(|_| kind == ProviderKind::Azure);
    let plan = tts.plan(SynthesizeBody {
        text: Some(PREVIEW_TEXT.to_owned()),
        voice_id: Some(voice_id),
        provider: Some(kind.as_str().to_owned()),
        language,
        format: params.format,
        ..SynthesizeBody::default()
    })?;
    let json = wants_json(&headers);
    let clip = tts.synthesize(&plan, !json).await?;
    // The sample is shared by every tenant; whoever made the provider call pays for it.
    if !clip.cached {
        count(&state, &user, &plan, &clip).await;
    }
    respond(&tts, clip, json).await
}

/// How much streamed audio is kept to measure its length (beyond it, the count is 0 s).
const MAX_MEASURED_BYTES: usize = 32 * 1024 * 1024;

/// `POST /stream/synthesize`: chunked audio as the provider produces it.
pub async fn stream_synthesize(
    State(state): State<AppState>,
    Extension(tts): Extension<Tts>,
    user: AuthUser,
    JsonBody(body): JsonBody<SynthesizeBody>,
) -> ApiResult<Response> {
    let mut plan = tts.plan(body)?;
    plan.cache_scope = user.tenant.as_str().to_owned();
    let clip = tts.stream(&plan).await?;
    let characters = plan.text.chars().count();
    let mut headers = vec![
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(clip.format.content_type()),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            HeaderName::from_static("provider"),
            header_value(clip.provider.as_str()),
        ),
        (
            HeaderName::from_static("voice-id"),
            header_value(&clip.voice_id),
        ),
        (
            HeaderName::from_static("x-characters"),
            header_value(&characters.to_string()),
        ),
        (
            HeaderName::from_static("x-cache"),
            HeaderValue::from_static(if clip.cached { "hit" } else { "miss" }),
        ),
    ];
    if let Some(seconds) = clip.duration_seconds {
        headers.push((
            HeaderName::from_static("x-audio-duration"),
            header_value(&format!("{seconds:.3}")),
        ));
    }
    // Usage is counted when the stream ends — whole, broken off or abandoned by the client:
    // what the provider produced is paid for either way.
    let provider = clip.provider;
    let cached = clip.cached;
    let format = clip.format;
    let known_seconds = clip.duration_seconds;
    let tts_for_cost = tts.clone();
    let mut sent: Vec<u8> = Vec::new();
    let mut chunks = clip.chunks;
    let body = async_body(async_stream_of(move |tx| async move {
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    if known_seconds.is_none() && sent.len() + bytes.len() <= MAX_MEASURED_BYTES {
                        sent.extend_from_slice(&bytes);
                    }
                    if tx.send(Ok(bytes)).await.is_err() {
                        tracing::info!("the client left before the end of the stream");
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stream broke off");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            }
        }
        let seconds = known_seconds.unwrap_or_else(|| {
            crate::audio::duration_seconds(
                &crate::service::finalize(format, std::mem::take(&mut sent)),
                format.encoding(),
            )
            .unwrap_or(0.0)
        });
        let cost = if cached {
            0.0
        } else {
            tts_for_cost.streamed_cost(provider, seconds)
        };
        let entry = UsageEntry {
            characters,
            audio_seconds: seconds,
            cost,
            cached,
            provider: provider.as_str(),
        };
        if let Err(e) = usage::record(
            &state,
            &user.tenant,
            plan.call_id.as_deref(),
            plan.customer_id.as_deref(),
            &entry,
        )
        .await
        {
            tracing::error!(error = %e, "usage not recorded");
        }
    }));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}

type Chunk = Result<bytes::Bytes, std::io::Error>;

/// Runs `producer` with a channel sender; the receiver side is the stream.
fn async_stream_of<F, Fut>(producer: F) -> tokio::sync::mpsc::Receiver<Chunk>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Chunk>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(producer(tx));
    rx
}

fn async_body(rx: tokio::sync::mpsc::Receiver<Chunk>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

/// `GET /usage/{scope}/{id}`: totals for a call, a customer or a month (`yyyy-mm`).
pub async fn usage_totals(
    State(state): State<AppState>,
    user: AuthUser,
    Path((scope, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let scope = match scope.as_str() {
        "calls" => "call",
        "customers" => "customer",
        "months" => "month",
        _ => {
            return Err(ApiError::NotFound {
                code: "not_found",
                message: "usage is kept per calls, customers and months".into(),
            });
        }
    };
    if id.len() > 128 || !is_key_safe(&id) {
        return Err(ApiError::field("id", "is not a valid id"));
    }
    let totals = usage::totals(&state, &user.tenant, &usage::counter_sk(scope, &id)).await?;
    Ok(Json(json!({ "scope": scope, "id": id, "usage": totals })))
}
