//! `vocelio-local bench`: latency and throughput of `GET /api/agents/{agent_id}` through the
//! local stack beside DynamoDB Local's own GetItem, and each Lambda binary's cold start
//! (exec to first answered invocation, against a minimal Lambda Runtime API) and peak RSS.

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
struct Series {
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_second: f64,
    count: usize,
}

fn summarize(mut samples: Vec<Duration>, wall: Duration) -> Series {
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

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn print_series(label: &str, s: &Series) {
    println!(
        "  {label:<44} p50 {:>9}  p99 {:>9}  max {:>9}  {:>8.0} req/s  (n={})",
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        s.per_second,
        s.count
    );
}

/// Runs the benchmark and prints its figures.
pub async fn run(requests: usize, lambda_dir: Option<PathBuf>) -> Result<(), String> {
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
    let tables = aws
        .provision(&standins::project_root().join("template.yaml"))
        .await?;
    let core = tables
        .first()
        .map(|t| t.logical_id.clone())
        .ok_or("no table")?;
    let config = stack::local_config(&core).map_err(|e| e.to_string())?;
    let secret = config.jwt_secret.expose().to_owned();
    let state = stack::local_state(config, &aws);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let app = crate::app::app(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

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

    let lambda_dir =
        lambda_dir.unwrap_or_else(|| standins::project_root().join("target").join("lambda"));
    println!("\nLambda binaries ({}):", lambda_dir.display());
    let agent_token = token_for_lambda;
    for (function, path) in [
        ("departments", "/api/departments"),
        ("agents", "/api/agents/bench-agent"),
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

/// `total` calls of `call` spread over `clients` concurrent tasks.
async fn concurrent<F, Fut>(clients: usize, total: usize, call: F) -> Result<Series, String>
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
fn api_event(path: &str, token: &str) -> serde_json::Value {
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
fn peak_rss_kib(pid: u32) -> Option<u64> {
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

async fn cold_start(
    binary: &Path,
    event: &serde_json::Value,
    dynamodb_url: &str,
    table: &str,
    secret: &str,
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
        .env("JWT_SECRET", secret)
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
