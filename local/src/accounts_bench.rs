//! The accounts series of the benchmark: Argon2id's cost per hash, sign-in p50/p99 at 1 and
//! 8 concurrent clients, token verification per request, refresh, and the accounts Lambda
//! binary's cold start and peak RSS.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::bench::{concurrent, ms, print_series, summarize};

/// Where the series run.
pub(crate) struct Target<'a> {
    pub base: &'a str,
    pub secret: &'a str,
    pub state: &'a vocelio_shared::AppState,
    pub dynamodb_url: &'a str,
    pub table: &'a str,
}

const PASSWORD: &str = "bench passphrase for vocelio 2026";

/// Runs the accounts series.
pub(crate) async fn run(target: &Target<'_>, lambda_dir: &Path) -> Result<(), String> {
    use accounts::password::{ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM};
    println!("\nAccounts:");
    let mut hashes = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        accounts::password::hash_password(PASSWORD).map_err(|e| e.to_string())?;
        hashes.push(t.elapsed());
    }
    let hash = summarize(hashes, Duration::from_secs(1));
    println!(
        "  Argon2id m={ARGON2_MEMORY_KIB} KiB t={ARGON2_ITERATIONS} p={ARGON2_PARALLELISM}: one hash p50 {}  p99 {}",
        ms(hash.p50),
        ms(hash.p99)
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("bench-{}@example.com", &id[id.len() - 12..]);
    let registered: Value = http
        .post(format!("{}/auth/register", target.base))
        .json(&json!({"email": email, "password": PASSWORD, "first_name": "Bench", "last_name": "Mark",
                      "organization_name": "Bench", "subdomain": format!("b{}", &id[id.len() - 12..])}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let access = registered["access_token"]
        .as_str()
        .ok_or_else(|| format!("register failed: {registered}"))?
        .to_owned();
    // Concurrent clients sign in as different users of the organisation (one user's own
    // parallel sign-ins from one address are throttled like guesses).
    let org = registered["user"]["organization_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut emails = vec![email.clone()];
    for i in 0..15 {
        let invited = format!("bench-{}-{i}@example.com", &id[id.len() - 12..]);
        http.post(format!("{}/organizations/{org}/users", target.base))
            .bearer_auth(&access)
            .json(&json!({"email": invited, "role": "supervisor"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        emails.push(invited);
    }
    let outbox: Value = http
        .get(format!("{}/__local/outbox", target.base))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    for mail in outbox["emails"].as_array().cloned().unwrap_or_default() {
        let text = mail["text"].as_str().unwrap_or_default();
        let Some(at) = text.find("token=") else {
            continue;
        };
        let token = text[at + 6..].split_whitespace().next().unwrap_or_default();
        if !emails.iter().any(|e| mail["to"] == e.as_str()) {
            continue;
        }
        http.post(format!("{}/auth/invitations/accept", target.base))
            .json(&json!({"token": token, "password": PASSWORD}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    let emails = std::sync::Arc::new(emails);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut refresh = registered["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    for clients in [1usize, 8] {
        let login = {
            let http = http.clone();
            let url = format!("{}/auth/login", target.base);
            let emails = emails.clone();
            let next = next.clone();
            move || {
                let http = http.clone();
                let url = url.clone();
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let email = emails[i % emails.len()].clone();
                async move {
                    let status = http
                        .post(url)
                        .json(&json!({"email": email, "password": PASSWORD}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .status();
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(format!("login answered {status}"))
                    }
                }
            }
        };
        let series = concurrent(clients, 40 * clients, login).await?;
        print_series(&format!("POST /auth/login ({clients} concurrent)"), &series);
    }

    let mut samples = Vec::new();
    let wall = Instant::now();
    for _ in 0..200 {
        let t = Instant::now();
        let answer: Value = http
            .post(format!("{}/auth/refresh", target.base))
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        samples.push(t.elapsed());
        refresh = answer["refresh_token"]
            .as_str()
            .ok_or_else(|| format!("refresh failed: {answer}"))?
            .to_owned();
    }
    print_series(
        "POST /auth/refresh (rotation)",
        &summarize(samples, wall.elapsed()),
    );

    let rounds = 20_000u32;
    let t = Instant::now();
    for _ in 0..rounds {
        target
            .state
            .jwt
            .verify(&access)
            .await
            .map_err(|e| e.to_string())?;
    }
    println!(
        "  access-token verification (EdDSA, in process): {:.1} µs per request",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    );

    let binary = lambda_dir.join("accounts").join("bootstrap");
    if !binary.exists() {
        println!("  accounts Lambda not built: run `cargo lambda build --release` first");
        return Ok(());
    }
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let event = crate::bench::api_event("/.well-known/jwks.json", &access);
        let (start, peak) = crate::bench::cold_start_with(
            &binary,
            &event,
            target.dynamodb_url,
            target.table,
            target.secret,
            &[("JWT_SIGNING_KEYS", target.secret.to_owned())],
        )
        .await?;
        starts.push(start);
        rss.push(peak);
    }
    starts.sort_unstable();
    rss.sort_unstable();
    println!(
        "  accounts Lambda: exec->first response median {}  min {}   peak RSS median {:.1} MiB",
        ms(starts[starts.len() / 2]),
        ms(starts[0]),
        rss[rss.len() / 2] as f64 / 1024.0
    );
    Ok(())
}
