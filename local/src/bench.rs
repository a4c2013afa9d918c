//! `vocelio-local bench`: latency and throughput of `GET /api/agents/{agent_id}` through the
//! local stack beside DynamoDB Local's own GetItem, and each Lambda binary's cold start
//! (exec to first answered invocation, against a minimal Lambda Runtime API) and peak RSS;
//! transfer requests at 1 and 64 clients with double assignments and capacity units; and the
//! Live Call Monitor's `GET /api/calls/active` with 1,000 active calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Mutex, Notify};
use vocelio_shared::Role;
use vocelio_shared::dynamo::s;

use crate::stack::{self, LocalAws};
use crate::standins::{self, StandIns};

/// Latency summary of one measured series.
pub(crate) struct Series {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    max: Duration,
    pub(crate) per_second: f64,
    count: usize,
}

pub(crate) fn summarize(mut samples: Vec<Duration>, wall: Duration) -> Series {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Series {
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
        per_second: samples.len() as f64 / wall.as_secs_f64(),
        count: samples.len(),
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub(crate) fn print_series(label: &str, s: &Series) {
    println!(
        "  {label:<44} p50 {:>9}  p99 {:>9}  max {:>9}  {:>8.0} req/s  (n={})",
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        s.per_second,
        s.count
    );
}

/// One simulated second of the benchmark's Twilio simulator (rings last 2 of them).
const SIM_SECOND: Duration = Duration::from_millis(5);

/// Which series run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Everything,
    Realtime,
    Tts,
    Telephony,
    Contacts,
    Accounts,
}

/// Runs the benchmark and prints its figures; `contact_rows` are the sizes of the generated
/// contact imports.
pub async fn run(
    requests: usize,
    lambda_dir: Option<PathBuf>,
    only: Only,
    contact_rows: &[usize],
) -> Result<(), String> {
    println!(
        "Vocelio benchmark ({} requests per series, {} cores)",
        requests,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let standins = tokio::task::spawn_blocking(|| StandIns::start(None, None))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let aws = LocalAws::connect(&standins.dynamodb.url, &standins.s3.url).await;
    aws.provision(&standins::project_root().join("template.yaml"))
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    // A key of its own (not a `local-` one): the Lambda binaries it starts refuse those.
    let bench_keys =
        vocelio_shared::jwt::SigningKeys::generate("bench-1").map_err(|e| e.to_string())?;
    let jwks = bench_keys.jwks().to_string();
    let config = stack::local_config_with(&base, &|name: &str| {
        if name == "JWT_PUBLIC_KEYS" {
            return Some(jwks.clone());
        }
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
    .map_err(|e| e.to_string())?;
    let core = config.table_name.clone();
    let secret = bench_keys.to_json();
    let state = stack::local_state(config, &aws);
    let realtime = stack::local_realtime(state.clone(), &aws)?;
    let (fakes, _fake_tasks) = stack::start_speech_fakes().await?;
    let tts = stack::local_tts(&aws, &fakes, &|name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })?;
    let (simulator, _simulator_task) = stack::start_twilio_simulator(&base, SIM_SECOND).await?;
    // The benchmark's one tenant places hundreds of calls: quotas out of its way.
    let telephony = stack::local_telephony(
        state.clone(),
        Some(tts.clone()),
        &simulator.base_url,
        &base,
        &|name: &str| match name {
            "CALLS_PER_MINUTE" | "MAX_CONCURRENT_CALLS" => Some("100000".to_owned()),
            _ => None,
        },
    )?;
    let _follower = crate::app::spawn_stream_follower(
        realtime.clone(),
        Some(telephony.clone()),
        &standins.dynamodb.url,
        &core,
    );
    let gateway = crate::gateway::LocalGateway::new(realtime.clone()).with_tts(
        tts::ws::TtsSocket::new(state.clone(), tts.clone(), &aws.sdk),
    );
    let contacts = stack::local_contacts(state.clone(), &aws, &|name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })?;
    let _imports = crate::app::spawn_import_notifications(
        contacts.clone(),
        std::time::Duration::from_millis(100),
    );
    let app = crate::app::app(
        state.clone(),
        &gateway,
        tts.clone(),
        telephony.clone(),
        contacts.clone(),
        stack::local_accounts(&|_| None, bench_keys.clone())?,
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let lambda_dir =
        lambda_dir.unwrap_or_else(|| standins::project_root().join("target").join("lambda"));
    let tts_target = crate::tts_bench::Target {
        base: &base,
        secret: &secret,
        azure_url: &fakes.azure_url,
        s3_url: &standins.s3.url,
        dynamodb_url: &standins.dynamodb.url,
        table: &core,
    };
    if only == Only::Tts {
        return crate::tts_bench::run(&tts_target, &lambda_dir).await;
    }
    let contacts_target = crate::contacts_bench::Target {
        base: &base,
        secret: &secret,
    };
    if only == Only::Contacts {
        return crate::contacts_bench::run(&contacts_target, contact_rows, requests).await;
    }
    let telephony_target = crate::telephony_bench::Target {
        base: &base,
        secret: &secret,
        simulator: &simulator,
        state: &state,
        telephony: &telephony,
        second: SIM_SECOND,
    };
    if only == Only::Telephony {
        return crate::telephony_bench::run(&telephony_target, requests).await;
    }
    let accounts_target = crate::accounts_bench::Target {
        base: &base,
        secret: &secret,
        state: &state,
        dynamodb_url: &standins.dynamodb.url,
        table: &core,
    };
    if only == Only::Accounts {
        return crate::accounts_bench::run(&accounts_target, &lambda_dir).await;
    }
    if only == Only::Realtime {
        sse_bench(&base, &secret).await?;
        for clients in [1, 100, 1000] {
            websocket_bench(&base, &secret, clients).await?;
        }
        return Ok(());
    }

    // Seed one department and one agent in a bench tenant.
    let tenant = "bench";
    let token = stack::mint_token(&secret, tenant, "admin-1", Role::Admin, 1)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let created = http
        .post(format!("{base}/api/departments"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bench", "phone_number": "555-123-4567"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !created.status().is_success() {
        return Err(format!(
            "seeding the department failed: {}",
            created.status()
        ));
    }
    let registered = http
        .post(format!("{base}/api/agents/register"))
        .bearer_auth(&token)
        .json(&json!({"agent_id": "bench-agent", "name": "Bench", "email": "bench@example.com", "department": "Bench", "skills": ["billing"], "languages": ["en"]}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !registered.status().is_success() {
        return Err(format!("seeding the agent failed: {}", registered.status()));
    }
    let url = format!("{base}/api/agents/bench-agent");
    let token_for_lambda = token.clone();

    let tenant_id = vocelio_shared::ids::TenantId::parse(tenant).map_err(|e| e.to_string())?;
    let pk = vocelio_shared::keys::agents_pk(&tenant_id);
    let sk = vocelio_shared::keys::agent_sk("bench-agent");
    let get_item = {
        let db = state.db.clone();
        let table = state.table().to_owned();
        move || {
            let request = db
                .get_item()
                .table_name(&table)
                .key("PK", s(&pk))
                .key("SK", s(&sk))
                .consistent_read(true);
            async move { request.send().await.map(|_| ()).map_err(|e| e.to_string()) }
        }
    };
    let get_api = {
        let http = http.clone();
        move || {
            let request = http.get(&url).bearer_auth(&token);
            async move {
                match request.send().await {
                    Ok(r) if r.status() == StatusCode::OK => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    };

    // Warm up both paths (DynamoDB Local is a JVM: its JIT needs a few thousand calls).
    for _ in 0..1500 {
        get_item().await?;
        get_api().await?;
    }

    println!("\nGET /api/agents/{{agent_id}} through the local stack vs DynamoDB Local GetItem:");
    // One client: the two alternate, so both see the same machine state.
    let (mut raw_samples, mut api_samples) =
        (Vec::with_capacity(requests), Vec::with_capacity(requests));
    let (mut raw_wall, mut api_wall) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..requests {
        let t = Instant::now();
        get_item().await?;
        let raw = t.elapsed();
        let t = Instant::now();
        get_api().await?;
        let api = t.elapsed();
        raw_samples.push(raw);
        api_samples.push(api);
        raw_wall += raw;
        api_wall += api;
    }
    let raw = summarize(raw_samples, raw_wall);
    let single = summarize(api_samples, api_wall);
    print_series("DynamoDB Local GetItem, 1 client", &raw);
    print_series("API, 1 client", &single);
    let raw32 = concurrent(32, requests, get_item.clone()).await?;
    let api32 = concurrent(32, requests, get_api.clone()).await?;
    print_series("DynamoDB Local GetItem, 32 concurrent clients", &raw32);
    print_series("API, 32 concurrent clients", &api32);
    println!(
        "  ratio API / GetItem: 1 client p50 {:.2}x p99 {:.2}x; 32 clients p50 {:.2}x p99 {:.2}x, throughput {:.2}x",
        single.p50.as_secs_f64() / raw.p50.as_secs_f64(),
        single.p99.as_secs_f64() / raw.p99.as_secs_f64(),
        api32.p50.as_secs_f64() / raw32.p50.as_secs_f64(),
        api32.p99.as_secs_f64() / raw32.p99.as_secs_f64(),
        api32.per_second / raw32.per_second,
    );
    println!(
        "  local stack process peak RSS: {}",
        peak_rss_kib(std::process::id())
            .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );

    transfers_bench(&base, &secret, &state, requests).await?;
    sse_bench(&base, &secret).await?;
    for clients in [1, 100, 1000] {
        websocket_bench(&base, &secret, clients).await?;
    }

    crate::tts_bench::run(&tts_target, &lambda_dir).await?;
    crate::telephony_bench::run(&telephony_target, requests).await?;
    crate::contacts_bench::run(&contacts_target, contact_rows, requests).await?;
    crate::accounts_bench::run(&accounts_target, &lambda_dir).await?;

    println!("\nLambda binaries ({}):", lambda_dir.display());
    let agent_token = token_for_lambda;
    for (function, path) in [
        ("departments", "/api/departments"),
        ("agents", "/api/agents/bench-agent"),
        ("transfers", "/api/calls/active"),
    ] {
        let binary = lambda_dir.join(function).join("bootstrap");
        if !binary.exists() {
            println!("  {function:<12} not built: run `cargo lambda build --release` first");
            continue;
        }
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        let mut starts = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..5 {
            let event = api_event(path, &agent_token);
            let (start, peak) =
                cold_start(&binary, &event, &standins.dynamodb.url, &core, &secret).await?;
            starts.push(start);
            rss.push(peak);
        }
        starts.sort_unstable();
        rss.sort_unstable();
        println!(
            "  {function:<12} size {:>6.2} MiB   exec->first response: median {:>9}  min {:>9}   peak RSS median {:.1} MiB",
            size as f64 / (1024.0 * 1024.0),
            ms(starts[starts.len() / 2]),
            ms(starts[0]),
            rss[rss.len() / 2] as f64 / 1024.0,
        );
    }
    drop(standins);
    Ok(())
}

/// Transfer requests through the local stack at 1 and 64 clients; double assignments read
/// back from the store; capacity units per request; the Live Call Monitor with 1,000 calls.
async fn transfers_bench(
    base: &str,
    secret: &str,
    state: &vocelio_shared::AppState,
    requests: usize,
) -> Result<(), String> {
    let tenant = "bench-transfers";
    let token = stack::mint_token(secret, tenant, "ai-agent", Role::Admin, 2)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .map_err(|e| e.to_string())?;
    let post = |path: &str, body: serde_json::Value| {
        let request = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = request.send().await.map_err(|e| e.to_string())?;
            let status = r.status();
            let units: f64 = r
                .headers()
                .get("x-dynamodb-capacity-units")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("{status}: {body}"));
            }
            Ok::<_, String>((body, units))
        }
    };
    for (i, name) in ["Sales", "Support"].iter().enumerate() {
        post(
            "/api/departments",
            json!({"name": name, "phone_number": format!("555-700-000{i}")}),
        )
        .await?;
        for a in 0..10 {
            let agent_id = format!("{}-{a}", name.to_lowercase());
            post("/api/agents/register", json!({"agent_id": agent_id, "name": agent_id, "email": format!("{agent_id}@example.com"),
                "department": name, "skills": if a % 2 == 0 { vec!["billing"] } else { vec![] }, "languages": ["en"], "status": "available"})).await?;
        }
    }
    let per_series = requests.min(1000);
    let total_calls = per_series * 2;
    println!("\nTransfer requests (2 departments, 20 agents; calls created beforehand):");
    let mut call_ids = Vec::with_capacity(total_calls);
    {
        let mut tasks = tokio::task::JoinSet::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(32));
        for i in 0..total_calls {
            let request = http
                .post(format!("{base}/api/calls"))
                .bearer_auth(&token)
                .json(&json!({"caller_number": format!("555-8{:02}-{:04}", i / 10000, i % 10000)}));
            let permit = semaphore.clone();
            tasks.spawn(async move {
                let _permit = permit.acquire_owned().await.map_err(|e| e.to_string())?;
                let r = request.send().await.map_err(|e| e.to_string())?;
                let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                body["call"]["call_id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no call: {body}"))
            });
        }
        for r in tasks.join_all().await {
            call_ids.push(r?);
        }
    }
    let mut units_assigned = Vec::new();
    let mut units_queued = Vec::new();
    let mut calls = call_ids.into_iter();
    for clients in [1usize, 64] {
        let batch: Vec<String> = calls.by_ref().take(per_series).collect();
        let wall = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let chunks: Vec<Vec<String>> = batch
            .chunks(batch.len().div_ceil(clients))
            .map(<[String]>::to_vec)
            .collect();
        for chunk in chunks {
            let http = http.clone();
            let token = token.clone();
            let base = base.to_owned();
            tasks.spawn(async move {
                let mut out = Vec::with_capacity(chunk.len());
                for (i, call_id) in chunk.into_iter().enumerate() {
                    let department = if i % 2 == 0 { "Sales" } else { "Support" };
                    let urgency = ["low", "medium", "high", "urgent"][i % 4];
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/api/calls/transfer"))
                        .bearer_auth(&token)
                        .json(&json!({"call_id": call_id, "target_department": department, "urgency_level": urgency}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let units: f64 = r
                        .headers()
                        .get("x-dynamodb-capacity-units")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0.0);
                    let status = r.status();
                    let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    if status != StatusCode::CREATED {
                        return Err(format!("{status}: {body}"));
                    }
                    out.push((t.elapsed(), body["status"].as_str().unwrap_or_default().to_owned(), units));
                }
                Ok::<_, String>(out)
            });
        }
        let mut samples = Vec::new();
        for result in tasks.join_all().await {
            for (elapsed, status, units) in result? {
                samples.push(elapsed);
                if status == "assigned" {
                    units_assigned.push(units)
                } else {
                    units_queued.push(units)
                }
            }
        }
        print_series(
            &format!("POST /api/calls/transfer, {clients} client(s)"),
            &summarize(samples, wall.elapsed()),
        );
    }
    // Double assignments, read back from the store: an agent holding two open offers or
    // connections, or a transfer some agent holds that names another agent.
    let tenant_id = vocelio_shared::ids::TenantId::parse(tenant).map_err(|e| e.to_string())?;
    let store = transfers::store::Store::new(state, &tenant_id);
    let now = vocelio_shared::clock::now();
    let all = store
        .transfers_between(
            &vocelio_shared::clock::rfc3339(now - time::Duration::hours(1)),
            &vocelio_shared::clock::rfc3339(now),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut held: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for t in all.iter().filter(|t| {
        matches!(
            t.status,
            transfers::model::TransferStatus::Assigned
                | transfers::model::TransferStatus::Connected
        )
    }) {
        if let Some(agent) = &t.agent_id {
            *held.entry(agent.clone()).or_default() += 1;
        }
    }
    let doubles: usize = held.values().map(|n| n.saturating_sub(1)).sum();
    println!(
        "  {} transfers: {} offered to agents, {} queued; double assignments: {doubles}",
        all.len(),
        held.len(),
        all.len() - held.values().sum::<usize>()
    );
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    println!(
        "  DynamoDB capacity units per transfer request (as DynamoDB Local reports them): assigned {:.1}, queued {:.1}",
        mean(&units_assigned),
        mean(&units_queued)
    );

    // The Live Call Monitor polls /api/calls/active every 5 s: 1,000 active calls in a tenant.
    let monitor_tenant = "bench-monitor";
    let monitor_token = stack::mint_token(secret, monitor_tenant, "sup", Role::Supervisor, 2)?;
    {
        let mut tasks = tokio::task::JoinSet::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(32));
        for i in 0..1000 {
            let request = http
                .post(format!("{base}/api/calls"))
                .bearer_auth(&monitor_token)
                .json(&json!({"caller_number": format!("555-9{:02}-{:04}", i / 10000, i % 10000), "current_flow": "support"}));
            let permit = semaphore.clone();
            tasks.spawn(async move {
                let _permit = permit.acquire_owned().await.map_err(|e| e.to_string())?;
                request.send().await.map_err(|e| e.to_string()).map(|_| ())
            });
        }
        for r in tasks.join_all().await {
            r?;
        }
    }
    let monitor_url = format!("{base}/api/calls/active");
    let get_active = {
        let http = http.clone();
        move || {
            let request = http.get(&monitor_url).bearer_auth(&monitor_token);
            async move {
                let r = request.send().await.map_err(|e| e.to_string())?;
                let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                match body["active_calls"].as_array().map(Vec::len) {
                    Some(1000) => Ok(()),
                    other => Err(format!("expected 1000 active calls, got {other:?}")),
                }
            }
        }
    };
    let mut samples = Vec::new();
    let wall = Instant::now();
    for _ in 0..100 {
        let t = Instant::now();
        get_active().await?;
        samples.push(t.elapsed());
    }
    print_series(
        "GET /api/calls/active, 1,000 active calls",
        &summarize(samples, wall.elapsed()),
    );
    Ok(())
}

/// One call of a bench tenant whose status the real-time series change.
struct BenchCall {
    http: reqwest::Client,
    url: String,
    token: String,
    call_id: String,
}

impl BenchCall {
    /// Registers a call through the API.
    async fn start(
        http: &reqwest::Client,
        base: &str,
        token: &str,
        caller: &str,
    ) -> Result<Self, String> {
        let created: serde_json::Value = http
            .post(format!("{base}/api/calls"))
            .bearer_auth(token)
            .json(&json!({ "caller_number": caller }))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let call_id = created["call"]["call_id"]
            .as_str()
            .ok_or("no call")?
            .to_owned();
        Ok(Self {
            http: http.clone(),
            url: format!("{base}/api/calls/{call_id}"),
            token: token.to_owned(),
            call_id,
        })
    }

    /// The `i`-th status change (`PATCH /api/calls/{id}`); returns its latency.
    fn change(
        &self,
        i: usize,
    ) -> impl std::future::Future<Output = Result<Duration, String>> + use<> {
        let request = self
            .http
            .patch(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({"status": if i.is_multiple_of(2) { "on_hold" } else { "active" }, "current_flow": format!("step-{i}")}));
        async move {
            let t = Instant::now();
            let r = request.send().await.map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("PATCH answered {}", r.status()));
            }
            Ok(t.elapsed())
        }
    }
}

/// Each listener's receipt of the `i`-th change minus when it was sent; and how many
/// receipts are missing.
fn delivery_delays(
    sent_at: &[Duration],
    listeners: Vec<Result<Vec<Duration>, String>>,
) -> Result<(Vec<Duration>, usize), String> {
    let mut delays = Vec::new();
    let mut missing = 0usize;
    for received in listeners {
        let received = received?;
        for (i, at) in sent_at.iter().enumerate() {
            match received.get(i) {
                Some(got) => delays.push(got.saturating_sub(*at)),
                None => missing += 1,
            }
        }
    }
    Ok((delays, missing))
}

/// Delivery through SSE: 100 clients follow one call's stream while its status changes;
/// the latency from each write to each client's receipt, and the write's own latency with
/// and without the listeners.
async fn sse_bench(base: &str, secret: &str) -> Result<(), String> {
    const CLIENTS: usize = 100;
    const CHANGES: usize = 30;
    let token = stack::mint_token(secret, "bench-sse", "sup", Role::Supervisor, 2)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    let call = BenchCall::start(&http, base, &token, "555-321-0000").await?;
    let call_id = call.call_id.clone();
    let change = |i: usize| call.change(i);
    // The write alone.
    let mut quiet = Vec::new();
    let wall = Instant::now();
    for i in 0..CHANGES {
        quiet.push(change(i).await?);
    }
    let quiet = summarize(quiet, wall.elapsed());

    // 100 listeners, each recording when each status change reaches it.
    let origin = Instant::now();
    let mut listeners = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let request = http
            .get(format!("{base}/api/calls/{call_id}/events?token={token}"))
            .header("accept", "text/event-stream");
        listeners.spawn(async move {
            let mut response = request.send().await.map_err(|e| e.to_string())?;
            let mut buffer = String::new();
            // Each status change yields exactly one call_status_update on this stream, in order.
            let mut received: Vec<Duration> = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while received.len() < CHANGES {
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let Ok(Ok(Some(chunk))) = tokio::time::timeout(remaining, response.chunk()).await
                else {
                    break;
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let data = frame
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .collect::<String>();
                    if let Ok(message) = serde_json::from_str::<serde_json::Value>(data.trim())
                        && message["type"] == "call_status_update"
                    {
                        received.push(origin.elapsed());
                    }
                }
            }
            Ok::<_, String>(received)
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // let every stream open
    let mut sent_at: Vec<Duration> = Vec::with_capacity(CHANGES);
    let mut loaded = Vec::new();
    let wall = Instant::now();
    for i in 0..CHANGES {
        sent_at.push(origin.elapsed());
        loaded.push(change(i).await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let loaded = summarize(loaded, wall.elapsed());
    let (delays, missing) = delivery_delays(&sent_at, listeners.join_all().await)?;
    let delivered = delays.len();
    let delivery = summarize(delays, wall.elapsed());
    println!(
        "\nServer-Sent Events ({CLIENTS} clients on one call's stream, {CHANGES} status changes, log read every 500 ms):"
    );
    print_series("delivery, write to receipt", &delivery);
    println!(
        "  messages delivered: {delivered} of {} (missing {missing}), {:.0} messages/s",
        CLIENTS * CHANGES,
        delivery.per_second
    );
    print_series("PATCH /api/calls/{id}, no listeners", &quiet);
    print_series(
        &format!("PATCH /api/calls/{{id}}, {CLIENTS} SSE listeners"),
        &loaded,
    );
    Ok(())
}

/// WebSocket delivery: `clients` connections subscribed to one call's events; status
/// changes written through the API reach them through the stream follower, the realtime
/// fan-out and the local management API, as on AWS.
async fn websocket_bench(base: &str, secret: &str, clients: usize) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    const CHANGES: usize = 20;
    let tenant = format!("bench-ws-{clients}");
    let token = stack::mint_token(secret, &tenant, "sup", Role::Supervisor, 2)?;
    let http = reqwest::Client::new();
    let call = BenchCall::start(&http, base, &token, "555-321-0001").await?;
    let call_id = call.call_id.clone();
    let change = |i: usize| call.change(i);
    let mut quiet = Vec::new();
    let wall = Instant::now();
    for i in 0..CHANGES {
        quiet.push(change(i).await?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let quiet = summarize(quiet, wall.elapsed());

    let origin = Instant::now();
    let ws_url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
    let (subscribed_tx, mut subscribed_rx) = tokio::sync::mpsc::channel::<()>(clients);
    let mut listeners = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let url = ws_url.clone();
        let call_id = call_id.clone();
        let subscribed = subscribed_tx.clone();
        listeners.spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| e.to_string())?;
            let subscribe =
                json!({"action": "subscribe", "channel": "calls", "filters": {"call_id": call_id}});
            socket
                .send(Message::Text(subscribe.to_string().into()))
                .await
                .map_err(|e| e.to_string())?;
            let mut received: Vec<Duration> = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while received.len() < CHANGES {
                let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, socket.next()).await
                else {
                    break;
                };
                let Message::Text(text) = frame else { continue };
                let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                match message["type"].as_str() {
                    Some("subscribed") => {
                        let _ = subscribed.send(()).await;
                    }
                    Some("call_status_update") => received.push(origin.elapsed()),
                    _ => {}
                }
            }
            let _ = socket.close(None).await;
            Ok::<_, String>(received)
        });
    }
    drop(subscribed_tx);
    for _ in 0..clients {
        if subscribed_rx.recv().await.is_none() {
            return Err("a WebSocket client failed to subscribe".into());
        }
    }
    let mut sent_at: Vec<Duration> = Vec::with_capacity(CHANGES);
    let mut loaded = Vec::new();
    let wall = Instant::now();
    for i in 0..CHANGES {
        sent_at.push(origin.elapsed());
        loaded.push(change(i).await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (delays, missing) = delivery_delays(&sent_at, listeners.join_all().await)?;
    let delivered = delays.len();
    if delivered == 0 {
        return Err(format!(
            "no WebSocket frame reached any of {clients} clients"
        ));
    }
    let last = delays.iter().max().copied().unwrap_or_default();
    let span = sent_at
        .last()
        .map(|l| l.saturating_sub(sent_at[0]) + last)
        .unwrap_or_default();
    let loaded = summarize(loaded, wall.elapsed());
    let delivery = summarize(delays, span);
    println!(
        "\nWebSocket ({clients} subscribed client(s), {CHANGES} status changes of one call, stream followed every 25 ms):"
    );
    print_series("delivery, write to receipt", &delivery);
    println!(
        "  frames delivered: {delivered} of {} (missing {missing}), {:.0} frames/s",
        clients * CHANGES,
        delivery.per_second
    );
    print_series("PATCH /api/calls/{id}, no subscribers", &quiet);
    print_series(
        &format!("PATCH /api/calls/{{id}}, {clients} subscribers"),
        &loaded,
    );
    Ok(())
}

/// `total` calls of `call` spread over `clients` concurrent tasks.
pub(crate) async fn concurrent<F, Fut>(
    clients: usize,
    total: usize,
    call: F,
) -> Result<Series, String>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let per_client = total.div_ceil(clients).max(1);
    let wall = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let call = call.clone();
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                call().await?;
                samples.push(t.elapsed());
            }
            Ok::<_, String>(samples)
        });
    }
    let mut samples = Vec::new();
    for result in tasks.join_all().await {
        samples.extend(result?);
    }
    Ok(summarize(samples, wall.elapsed()))
}

/// An API Gateway HTTP API v2 event for `GET path`.
pub(crate) fn api_event(path: &str, token: &str) -> serde_json::Value {
    json!({
        "version": "2.0", "routeKey": format!("GET {path}"), "rawPath": path, "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {token}"), "accept": "application/json", "host": "bench.local"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local", "domainPrefix": "bench",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench-request", "routeKey": format!("GET {path}"), "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
}

/// Peak resident set size (VmHWM) of a process, in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The minimal Lambda Runtime API: hands out one event, then waits; records the response.
#[derive(Clone)]
struct RuntimeApi {
    event: Arc<serde_json::Value>,
    served: Arc<Mutex<bool>>,
    answered: Arc<Notify>,
    answer: Arc<Mutex<Option<(Instant, String)>>>,
}

async fn next_invocation(State(api): State<RuntimeApi>) -> (HeaderMap, String) {
    let first = {
        let mut served = api.served.lock().await;
        !std::mem::replace(&mut *served, true)
    };
    if !first {
        // The function polls again after answering: keep it waiting until it is stopped.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    let deadline = (time::OffsetDateTime::now_utc().unix_timestamp() + 30) * 1000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        http::HeaderValue::from_static("bench-invocation-1"),
    );
    if let Ok(v) = deadline.to_string().parse() {
        headers.insert("lambda-runtime-deadline-ms", v);
    }
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        http::HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        http::HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (headers, api.event.to_string())
}

async fn invocation_answer(State(api): State<RuntimeApi>, body: String) -> StatusCode {
    *api.answer.lock().await = Some((Instant::now(), body));
    api.answered.notify_one();
    StatusCode::ACCEPTED
}

pub(crate) async fn cold_start(
    binary: &Path,
    event: &serde_json::Value,
    dynamodb_url: &str,
    table: &str,
    secret: &str,
) -> Result<(Duration, u64), String> {
    cold_start_with(binary, event, dynamodb_url, table, secret, &[]).await
}

/// [`cold_start`] with more environment variables for the function.
pub(crate) async fn cold_start_with(
    binary: &Path,
    event: &serde_json::Value,
    dynamodb_url: &str,
    table: &str,
    secret: &str,
    extra_env: &[(&str, String)],
) -> Result<(Duration, u64), String> {
    let api = RuntimeApi {
        event: Arc::new(event.clone()),
        served: Arc::new(Mutex::new(false)),
        answered: Arc::new(Notify::new()),
        answer: Arc::new(Mutex::new(None)),
    };
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(invocation_answer),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_answer),
        )
        .route("/2018-06-01/runtime/init/error", post(invocation_answer))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let runtime_api = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_url)
        .env("TABLE_NAME", table)
        .env("JWT_PUBLIC_KEYS", public_keys_of(secret)?)
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let answered = tokio::time::timeout(Duration::from_secs(20), api.answered.notified()).await;
    let answer = api.answer.lock().await.clone();
    let peak = peak_rss_kib(pid).unwrap_or(0);
    let _ = child.kill().await;
    server.abort();
    answered.map_err(|_| format!("{} did not answer within 20 s", binary.display()))?;
    let (at, body) = answer.ok_or("no answer recorded")?;
    let status = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .unwrap_or(0);
    if status != 200 {
        return Err(format!("{} answered {status}: {body}", binary.display()));
    }
    Ok((at - started, peak))
}

/// The public JWKS of a signing key set given as JSON.
pub(crate) fn public_keys_of(keys: &str) -> Result<String, String> {
    vocelio_shared::jwt::SigningKeys::from_json(keys)
        .map(|k| k.jwks().to_string())
        .map_err(|e| e.to_string())
}
