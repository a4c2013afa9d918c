//! The telephony series of the benchmark: signed status callbacks processed per second
//! (signature check, read, conditional write and its event), and the time from
//! `POST /api/calls/make` to the call showing `active` in `/api/calls/active` under the
//! Twilio simulator.

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
            let url = format!(
                "{}/twilio/status?tenant={tenant}&call_id={call_id}",
                target.base
            );
            let params: Vec<(String, String)> = [
                ("AccountSid", twilio_sim::ACCOUNT_SID),
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
            let signature = telephony::signature::sign(twilio_sim::AUTH_TOKEN, &url, &params);
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
        .json(&json!({"flow_id": "bench", "phone_numbers": ["+14155559000"], "webhook_url": flow}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !registered.status().is_success() {
        return Err(format!("register flow: {}", registered.status()));
    }
    let overall = Instant::now();
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
    let series = summarize(times, overall.elapsed());
    print_series("make → active in /api/calls/active", &series);
    println!(
        "  (includes the simulated ring of 2 s = {}; Twilio's own ring is what dominates on a real call)",
        ms(ring)
    );
    Ok(())
}
