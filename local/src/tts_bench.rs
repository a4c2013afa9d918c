//! The TTS series of `vocelio-local bench`: cache-hit latency, local synthesis time per
//! second of audio, time to first audio byte when streaming, provider calls per repeated
//! phrase, and the function's peak RSS while synthesizing (release binary, cold).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::bench::{ms, print_series, summarize};
use crate::stack;

/// Where the series run.
pub(crate) struct Target<'a> {
    pub base: &'a str,
    pub secret: &'a str,
    pub azure_url: &'a str,
    pub s3_url: &'a str,
    pub dynamodb_url: &'a str,
    pub table: &'a str,
}

fn unique(words: &str) -> String {
    format!(
        "{words} Ref {}.",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    )
}

async fn azure_calls(http: &reqwest::Client, azure_url: &str) -> Result<u64, String> {
    let stats: Value = http
        .get(format!("{azure_url}/__fake/stats"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    stats["synthesis_calls"]
        .as_u64()
        .ok_or_else(|| "the Azure fake has no stats".to_owned())
}

/// One `POST /synthesize`; returns the audio seconds it reported.
async fn synthesize(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &Value,
) -> Result<f64, String> {
    let response = http
        .post(format!("{base}/synthesize"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("/synthesize answered {}", response.status()));
    }
    let seconds = response
        .headers()
        .get("x-audio-duration")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    response.bytes().await.map_err(|e| e.to_string())?;
    Ok(seconds)
}

pub(crate) async fn run(target: &Target<'_>, lambda_dir: &Path) -> Result<(), String> {
    let base = target.base;
    let token = stack::mint_token(target.secret, "bench-tts", "admin", Role::Admin, 2)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "\nTTS (Azure / ElevenLabs contract fakes and espeak-ng on this machine, S3 on moto):"
    );

    // Cache hits: one phrase synthesized once, then served from S3.
    let phrase = json!({"text": unique("Thank you for calling, how can I help you today?"), "voice_id": "en-US-AriaNeural", "provider": "azure"});
    synthesize(&http, base, &token, &phrase).await?;
    let mut samples = Vec::new();
    let wall = Instant::now();
    for _ in 0..300 {
        let t = Instant::now();
        synthesize(&http, base, &token, &phrase).await?;
        samples.push(t.elapsed());
    }
    print_series(
        "POST /synthesize cache hit, 1 client",
        &summarize(samples, wall.elapsed()),
    );
    let hit = {
        let (http, token, phrase) = (http.clone(), token.clone(), phrase.clone());
        let base = base.to_owned();
        move || {
            let (http, token, phrase, base) =
                (http.clone(), token.clone(), phrase.clone(), base.clone());
            async move { synthesize(&http, &base, &token, &phrase).await.map(|_| ()) }
        }
    };
    let hits16 = crate::bench::concurrent(16, 800, hit).await?;
    print_series("POST /synthesize cache hit, 16 clients", &hits16);

    // Local synthesis speed: distinct phrases (misses) through the API, and the engine alone.
    let mut request_time = Duration::ZERO;
    let mut audio_seconds = 0.0;
    for i in 0..20 {
        let body = json!({"text": unique(&format!("Your order number {i} has shipped and should arrive within three business days.")), "voice_id": "en-us", "provider": "local"});
        let t = Instant::now();
        audio_seconds += synthesize(&http, base, &token, &body).await?;
        request_time += t.elapsed();
    }
    let provider = tts::local::LocalProvider::default();
    let mut engine_time = Duration::ZERO;
    let mut engine_seconds = 0.0;
    for i in 0..20 {
        let request = tts::provider::SynthesisRequest {
            text: unique(&format!(
                "Your order number {i} has shipped and should arrive within three business days."
            )),
            voice_id: "en-us".into(),
            language: None,
            prosody: tts::ssml::Prosody::default(),
            format: tts::formats::AudioFormat::Mp3,
        };
        let t = Instant::now();
        let audio = tts::provider::SpeechProvider::synthesize(&provider, &request)
            .await
            .map_err(|e| e.to_string())?;
        engine_time += t.elapsed();
        engine_seconds += tts::audio::duration_seconds(&audio, request.format.encoding())
            .map_err(|e| e.to_string())?;
    }
    println!(
        "  local synthesis (espeak-ng + MP3), per second of audio: {:.1} ms through the API (miss: synthesis + S3 put + usage), {:.1} ms engine alone ({:.1} s of audio each run)",
        request_time.as_secs_f64() * 1000.0 / audio_seconds.max(0.001),
        engine_time.as_secs_f64() * 1000.0 / engine_seconds.max(0.001),
        audio_seconds
    );

    // Streaming: time to the first audio byte vs the whole clip.
    for (provider, voice) in [("local", "en-us"), ("azure", "en-US-AriaNeural")] {
        let mut first = Vec::new();
        let mut whole = Vec::new();
        let wall = Instant::now();
        for _ in 0..10 {
            let body = json!({"text": unique("Thank you for calling Vocelio. Your call is important to us. All of our agents are busy right now. Please stay on the line and the next available agent will be with you shortly."), "voice_id": voice, "provider": provider});
            let t = Instant::now();
            let mut response = http
                .post(format!("{base}/stream/synthesize"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let mut got_first = None;
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                if got_first.is_none() && !chunk.is_empty() {
                    got_first = Some(t.elapsed());
                }
            }
            first.push(got_first.ok_or("no audio streamed")?);
            whole.push(t.elapsed());
        }
        let first = summarize(first, wall.elapsed());
        let whole = summarize(whole, wall.elapsed());
        println!(
            "  POST /stream/synthesize ({provider:<5}, 4 sentences)    first byte p50 {:>9} p99 {:>9}   whole clip p50 {:>9}",
            ms(first.p50),
            ms(first.p99),
            ms(whole.p50)
        );
    }

    // Provider calls per repeated phrase: 10 phrases, each asked 20 times, 10 at once.
    let before = azure_calls(&http, target.azure_url).await?;
    for p in 0..10 {
        let body = json!({"text": unique(&format!("Repeated phrase number {p}, please hold.")), "voice_id": "en-US-GuyNeural", "provider": "azure"});
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (http, token, body, base) =
                (http.clone(), token.clone(), body.clone(), base.to_owned());
            tasks.spawn(async move { synthesize(&http, &base, &token, &body).await });
            if tasks.len() == 10 {
                while let Some(done) = tasks.join_next().await {
                    done.map_err(|e| e.to_string())??;
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
    }
    let calls = azure_calls(&http, target.azure_url).await? - before;
    println!(
        "  provider calls per repeated phrase (10 phrases x 20 requests, 10 concurrent): {:.2}",
        calls as f64 / 10.0
    );

    // The release function, cold, synthesizing 500 characters: peak RSS.
    let binary = lambda_dir.join("tts").join("bootstrap");
    if !binary.exists() {
        println!("  tts Lambda binary not built: run `cargo lambda build --release -p tts` first");
        return Ok(());
    }
    let lambda_token = stack::mint_token(target.secret, "bench-tts", "admin", Role::Admin, 2)?;
    let text = "Thank you for calling. ".repeat(22);
    for (provider, voice) in [("local", "en-us"), ("azure", "en-US-JennyNeural")] {
        let body = json!({"text": unique(&text), "voice_id": voice, "provider": provider});
        let event = post_event("/synthesize", &lambda_token, &body);
        let mut env = vec![
            ("AUDIO_BUCKET", stack::LOCAL_BUCKET.to_owned()),
            ("AWS_ENDPOINT_URL_S3", target.s3_url.to_owned()),
            ("AWS_S3_FORCE_PATH_STYLE", "true".to_owned()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("LOCAL_TTS_ENABLED", "true".to_owned()),
        ];
        if provider == "azure" {
            env.push(("AZURE_SPEECH_KEY", crate::fakes::AZURE_FAKE_KEY.to_owned()));
            env.push(("AZURE_SPEECH_ENDPOINT", target.azure_url.to_owned()));
        }
        let (start, peak) = crate::bench::cold_start_with(
            &binary,
            &event,
            target.dynamodb_url,
            target.table,
            target.secret,
            &env,
        )
        .await?;
        println!(
            "  tts Lambda, cold, 500 characters with {provider:<5} to MP3: exec->response {:>9}, peak RSS {:.1} MiB (espeak-ng runs as its own process)",
            ms(start),
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

/// An API Gateway HTTP API v2 event for `POST path` with a JSON body.
fn post_event(path: &str, token: &str, body: &Value) -> Value {
    json!({
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "content-type": "application/json", "accept": "audio/mpeg", "host": "bench.local"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local", "domainPrefix": "bench",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench-request", "routeKey": format!("POST {path}"), "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}
