//! The telephony series of the benchmark: signed status callbacks processed per second
//! (the account's token found from its `AccountSid`, Twilio's signature and ours on the
//! query checked, read, conditional write and its event); `POST /api/calls/make` itself
//! (p50/p99: role, destination policy, DNC, caller ID, quotas, the record, Twilio) and the
//! time from it to the call showing `active` in `/api/calls/active` under the Twilio
//! simulator; and the time from an agent leg's no-answer to the next agent's offer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use vocelio_shared::Role;

use crate::bench::{concurrent, ms, print_series, summarize};
use crate::stack;

/// Where the series run.
pub(crate) struct Target<'a> {
    pub base: &'a str,
    pub secret: &'a str,
    pub simulator: &'a twilio_sim::Simulator,
    pub state: &'a vocelio_shared::AppState,
    pub telephony: &'a telephony::Telephony,
    /// The real length of one simulated second.
    pub second: Duration,
}

const STATUSES: [&str; 4] = ["initiated", "ringing", "in-progress", "completed"];

/// Runs the telephony series.
pub(crate) async fn run(target: &Target<'_>, requests: usize) -> Result<(), String> {
    let tenant = format!("bench-tel-{}", uuid::Uuid::now_v7().simple());
    let token = stack::mint_token(target.secret, &tenant, "admin-1", Role::Admin, 1)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "\nTelephony (Twilio simulator, one simulated second = {}):",
        ms(target.second)
    );

    // The tenant's Twilio subaccount (made on its first telephony request) signs its
    // callbacks; buy it a number to call from.
    let number = buy_number(&http, target, &token).await?;
    let account = target
        .simulator
        .accounts()
        .into_iter()
        .find(|a| a.friendly_name == format!("vocelio:{tenant}"))
        .ok_or("the tenant's subaccount was not created")?;
    // Calls to report on: call records as `make` writes them, with CallSids of their own
    // (so only our signed callbacks move them).
    let calls = (requests / STATUSES.len()).clamp(50, 500);
    let tenant_id = vocelio_shared::ids::TenantId::parse(&tenant).map_err(|e| e.to_string())?;
    let engine = transfers::engine::Engine::new(target.state, &tenant_id);
    let mut placed = Vec::with_capacity(calls);
    for i in 0..calls {
        let sid = format!("CA{:032x}", uuid::Uuid::now_v7().as_u128());
        let call_id = format!("call_bench_{i}");
        let at = vocelio_shared::clock::rfc3339(vocelio_shared::clock::now());
        let record: transfers::model::Call = serde_json::from_value(json!({
            "call_id": call_id, "call_sid": sid, "caller_number": format!("+1415{:07}", 5_550_000 + i),
            "called_number": "+14155550100", "direction": "outbound", "current_flow": null,
            "current_department": null, "assigned_agent": null, "status": "ringing",
            "start_time": at, "end_time": null, "duration": null, "ai_minutes": 0.0,
            "transfer_minutes": 0.0, "cost_ai": 0.0, "cost_human": 0.0, "transfer_count": 0,
            "open_transfer_id": null, "connected_at": null, "transfers": [],
            "carrier": {"provider": "twilio", "status": "queued", "sequence": null,
                        "direction": "outbound-api", "to": format!("+1415{:07}", 5_550_000 + i),
                        "from": "+14155550100", "answered_at": null, "price": null,
                        "price_unit": null, "conference": null, "conference_sid": null,
                        "muted": false, "on_hold": false, "transferred_to": null, "synced_at": at},
            "created_at": at, "updated_at": at,
        }))
        .map_err(|e| e.to_string())?;
        engine
            .create_call(record)
            .await
            .map_err(|e| e.to_string())?;
        placed.push((sid, call_id));
    }
    // Signed callbacks: each call gets the four statuses with sequence numbers 100.. , then each once again (a duplicate).
    let mut callbacks = Vec::new();
    for round in 0..STATUSES.len() + 1 {
        for (sid, call_id) in &placed {
            let status = STATUSES[round.min(STATUSES.len() - 1)];
            let url = target
                .telephony
                .webhook_url(
                    "/twilio/status",
                    &[("tenant", tenant.as_str()), ("call_id", call_id.as_str())],
                )
                .map_err(|e| e.to_string())?;
            let params: Vec<(String, String)> = [
                ("AccountSid", account.sid.as_str()),
                ("CallSid", sid.as_str()),
                ("CallStatus", status),
                (
                    "SequenceNumber",
                    &(100 + round.min(STATUSES.len() - 1)).to_string(),
                ),
                ("CallbackSource", "call-progress-events"),
                ("CallDuration", "12"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            let signature = telephony::signature::sign(&account.auth_token, &url, &params);
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            callbacks.push((url, signature, body));
        }
    }
    // Rounds must stay in order per call: run round by round, 16 at once within a round.
    let callbacks = Arc::new(callbacks);
    let mut samples = Vec::new();
    let wall = Instant::now();
    for round in 0..STATUSES.len() + 1 {
        let next = Arc::new(AtomicUsize::new(round * placed.len()));
        let end = (round + 1) * placed.len();
        let series = concurrent(16, placed.len(), {
            let http = http.clone();
            let callbacks = callbacks.clone();
            let next = next.clone();
            move || {
                let http = http.clone();
                let callbacks = callbacks.clone();
                let next = next.clone();
                async move {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return Ok(());
                    }
                    let (url, signature, body) = &callbacks[i];
                    let response = http
                        .post(url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-twilio-signature", signature)
                        .header("x-forwarded-proto", "http")
                        .body(body.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if response.status().as_u16() != 204 {
                        return Err(format!("callback answered {}", response.status()));
                    }
                    Ok(())
                }
            }
        })
        .await?;
        samples.push(series);
    }
    let total = callbacks.len();
    let elapsed = wall.elapsed();
    let p50 = samples.iter().map(|s| s.p50).max().unwrap_or_default();
    println!(
        "  status callbacks (signed, 16 at once)          {total} in {:.2} s: {:.0}/s; per round p50 ≤ {} (worst round)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        ms(p50)
    );
    for (round, s) in samples.iter().enumerate() {
        let label = if round < STATUSES.len() {
            format!("callback {} (applies)", STATUSES[round])
        } else {
            "callback completed again (duplicate)".to_owned()
        };
        print_series(&label, s);
    }

    // make → active in /api/calls/active, one call at a time.
    let runs = 30;
    let mut times = Vec::with_capacity(runs);
    let flow = format!("{}/__sim/agent?seconds=600", target.simulator.base_url);
    let registered = http
        .post(format!("{}/admin/register-flow", target.base))
        .bearer_auth(&token)
        .json(&json!({"flow_id": "bench", "phone_numbers": [number], "webhook_url": flow}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !registered.status().is_success() {
        return Err(format!("register flow: {}", registered.status()));
    }
    let overall = Instant::now();
    let mut answers = Vec::with_capacity(runs);
    for i in 0..runs {
        let started = Instant::now();
        let made = http
            .post(format!("{}/api/calls/make", target.base))
            .bearer_auth(&token)
            .json(&json!({"to": format!("+1415666{:04}", 1000 + i), "flow_id": "bench"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: serde_json::Value = made.json().await.map_err(|e| e.to_string())?;
        answers.push(started.elapsed());
        let Some(call_id) = body["call_id"].as_str().map(str::to_owned) else {
            return Err(format!("make call: {body}"));
        };
        loop {
            let active: serde_json::Value = http
                .get(format!("{}/api/calls/active", target.base))
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let live = active["active_calls"].as_array().is_some_and(|rows| {
                rows.iter()
                    .any(|r| r["call_id"] == call_id.as_str() && r["status"] == "active")
            });
            if live {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let simulated = body["call_sid"]
                    .as_str()
                    .and_then(|sid| target.simulator.call(sid));
                return Err(format!(
                    "call {call_id} never showed active: {active}; {body}; {simulated:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(started.elapsed());
        if let Some(sid) = body["call_sid"].as_str() {
            let _ = http
                .post(format!("{}/api/calls/{sid}/end", target.base))
                .bearer_auth(&token)
                .send()
                .await;
        }
    }
    let ring = target.second.mul_f64(2.0);
    let wall = overall.elapsed();
    print_series(
        "POST /api/calls/make (its answer)",
        &summarize(answers, wall),
    );
    let series = summarize(times, wall);
    print_series("make → active in /api/calls/active", &series);
    println!(
        "  (includes the simulated ring of 2 s = {}; Twilio's own ring is what dominates on a real call)",
        ms(ring)
    );
    policy_cost(target);
    no_answer_to_next_offer(&http, target, &tenant, &token).await
}

/// Buys a number for the tenant through the API (search, then buy the first offered).
async fn buy_number(
    http: &reqwest::Client,
    target: &Target<'_>,
    token: &str,
) -> Result<String, String> {
    let found: serde_json::Value = http
        .get(format!(
            "{}/api/numbers/search?country=US&area_code=212",
            target.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let number = found["available_numbers"][0]["phone_number"]
        .as_str()
        .ok_or_else(|| format!("number search: {found}"))?
        .to_owned();
    let bought = http
        .post(format!("{}/api/numbers/buy", target.base))
        .bearer_auth(token)
        .json(&json!({"phone_number": number}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !bought.status().is_success() {
        return Err(format!("buy number: {}", bought.status()));
    }
    Ok(number)
}

/// Our own time of the dialling rules (no I/O): role, destination policy by country
/// code, number kind and deny prefix, for a mix of allowed and refused numbers.
fn policy_cost(target: &Target<'_>) {
    let policy = telephony::policy::DialPolicy::default();
    let numbers = [
        "+14155550123",
        "+19005550123",
        "+447400123456",
        "+12125550188",
    ];
    let rounds = 20_000;
    let started = Instant::now();
    let mut refused = 0usize;
    for i in 0..rounds {
        if target
            .telephony
            .check_destination(&policy, numbers[i % numbers.len()])
            .is_err()
        {
            refused += 1;
        }
    }
    let each = started.elapsed() / rounds as u32;
    println!(
        "  dialling rules (our own time, no I/O)           {:.1} µs per number ({refused} of {rounds} refused)",
        each.as_secs_f64() * 1e6
    );
}

/// The time from an agent's leg ending `no-answer` at Twilio to the transfer's offer to
/// the next agent (read from the transfer, polled every 5 ms).
async fn no_answer_to_next_offer(
    http: &reqwest::Client,
    target: &Target<'_>,
    tenant: &str,
    token: &str,
) -> Result<(), String> {
    let runs = 10;
    let call = |method: reqwest::Method, path: String, body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, format!("{}{path}", target.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            Ok::<_, String>((status, body))
        }
    };
    call(
        reqwest::Method::POST,
        "/api/departments".into(),
        Some(json!({"name": "Bench desk", "phone_number": "+1555-BENCH-01"})),
    )
    .await?;
    let tenant_id = vocelio_shared::ids::TenantId::parse(tenant).map_err(|e| e.to_string())?;
    let mut away_phones = Vec::new();
    for agent in ["away", "here"] {
        call(
            reqwest::Method::POST,
            "/api/agents/register".into(),
            Some(json!({"agent_id": agent, "name": agent, "email": format!("{agent}@example.com"), "department": "Bench desk"})),
        )
        .await?;
        if agent == "away" {
            let identity = target
                .telephony
                .client_identity(&tenant_id, agent)
                .map_err(|e| e.to_string())?;
            away_phones.push(format!("client:{identity}"));
        }
    }
    for phone in &away_phones {
        target.simulator.set_no_answer(phone);
    }
    // The calls run the "bench" flow registered above (the AI stand-in keeps them live).
    let mut delays = Vec::with_capacity(runs);
    // The away agent's legs of earlier rounds.
    let mut seen = std::collections::HashSet::new();
    let overall = Instant::now();
    for i in 0..runs {
        // Only "away" is free when the transfer is raised; "here" comes back just after.
        for (agent, status) in [("here", "offline"), ("away", "available")] {
            call(
                reqwest::Method::PUT,
                format!("/api/agents/{agent}/status"),
                Some(json!({"status": status})),
            )
            .await?;
        }
        let (_, made) = call(
            reqwest::Method::POST,
            "/api/calls/make".into(),
            Some(json!({"to": format!("+1415777{:04}", 1000 + i), "flow_id": "bench"})),
        )
        .await?;
        let call_id = made["call_id"]
            .as_str()
            .ok_or_else(|| format!("make: {made}"))?
            .to_owned();
        let sid = made["call_sid"]
            .as_str()
            .ok_or_else(|| format!("make: {made}"))?
            .to_owned();
        let started = Instant::now();
        while target.simulator.call(&sid).map(|c| c.status) != Some("in-progress".into()) {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the bench call was never answered".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (_, raised) = call(
            reqwest::Method::POST,
            format!("/api/calls/{call_id}/transfer"),
            Some(json!({"transfer_to": "Bench desk"})),
        )
        .await?;
        let transfer_id = raised["transfer_id"]
            .as_str()
            .ok_or_else(|| format!("transfer: {raised}"))?
            .to_owned();
        call(
            reqwest::Method::PUT,
            "/api/agents/here/status".into(),
            Some(json!({"status": "available"})),
        )
        .await?;
        // The away agent's leg rings out (AGENT_RING_SECONDS) and ends no-answer.
        let ended = loop {
            let done = target.simulator.calls().into_iter().any(|c| {
                away_phones.contains(&c.to) && c.status == "no-answer" && !seen.contains(&c.sid)
            });
            if done {
                break Instant::now();
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err("the away agent's leg never ended".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        loop {
            let (_, t) = call(
                reqwest::Method::GET,
                format!("/api/transfers/{transfer_id}"),
                None,
            )
            .await?;
            if t["transfer"]["agent_id"] == "here" {
                delays.push(ended.elapsed());
                break;
            }
            if ended.elapsed() > Duration::from_secs(60) {
                return Err(format!("no next offer: {t}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        call(
            reqwest::Method::POST,
            format!("/api/calls/{call_id}/end"),
            None,
        )
        .await?;
        for c in target.simulator.calls() {
            if away_phones.contains(&c.to) {
                seen.insert(c.sid);
            }
        }
    }
    print_series(
        "agent leg no-answer → next agent offered",
        &summarize(delays, overall.elapsed()),
    );
    Ok(())
}
