//! Telephony, as the app, the AI agent and Twilio (the local simulator) live it: calls
//! placed and watched, inbound calls answered from flows, transfers to numbers and to
//! departments, mute, hold, end, and Twilio's callbacks (signed, late, repeated, forged).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::helpers::{Session, TestApp, events_of, id_of, spawn_app, spawn_app_with, stand};

/// A fresh number of the 415 area with the given last four digits (the simulator's
/// outcome rule reads them).
pub(crate) fn number_ending(last4: &str) -> String {
    // An exchange of 200-899 other than N11 codes: a valid, ordinary number (the dialler
    // refuses invalid ones, and the premium 976 exchange).
    let mut middle = 200 + uuid::Uuid::now_v7().as_u128() % 700;
    if middle % 100 == 11 {
        middle += 1;
    }
    format!("+1415{middle:03}{last4}")
}

/// Area codes the tests buy numbers in (spread, so concurrent tests rarely want the same).
const AREA_CODES: [&str; 12] = [
    "415", "628", "650", "510", "408", "707", "925", "209", "559", "661", "805", "916",
];

/// Buys a number for the session's tenant through the API, as the Phone Numbers screen
/// does (search, pick one, buy); returns it.
pub(crate) async fn own_number(session: &Session<'_>) -> String {
    for _ in 0..10 {
        let pick = uuid::Uuid::now_v7().as_u128();
        let area = AREA_CODES[(pick % AREA_CODES.len() as u128) as usize];
        let found = session
            .get(&format!("/api/numbers/search?country=US&area_code={area}"))
            .await
            .expect(200);
        let list = found.body["available_numbers"].as_array().unwrap().clone();
        if list.is_empty() {
            continue;
        }
        let number = list[((pick >> 8) % list.len() as u128) as usize]["phone_number"]
            .as_str()
            .unwrap()
            .to_owned();
        let bought = session
            .post(
                "/api/numbers/buy",
                json!({"phone_number": number, "friendly_name": "Local test", "voice_url": "https://ignored.example/voice"}),
            )
            .await;
        if bought.status == 201 {
            assert!(bought.body["sid"].as_str().unwrap().starts_with("PN"));
            return number;
        }
    }
    panic!("no number could be bought");
}

/// The simulator's AI-agent stand-in: keeps a call live `seconds` simulated seconds.
fn agent_stand_in(app: &TestApp, seconds: u32) -> String {
    format!("{}/__sim/agent?seconds={seconds}", app.twilio.base_url)
}

/// Polls `check` every 10 ms until it returns `Some`, for at most `limit`.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn status_of(session: &Session<'_>, id: &str) -> Value {
    session
        .get(&format!("/api/calls/{id}/status"))
        .await
        .expect(200)
        .body
}

pub(crate) async fn wait_status(session: &Session<'_>, id: &str, want: &str) -> Value {
    eventually(Duration::from_secs(20), want, || async {
        let s = status_of(session, id).await;
        (s["status"] == want).then_some(s)
    })
    .await
}

/// Waits (20 s at most) until transfer `transfer_id` is `status`; returns it.
pub(crate) async fn wait_transfer(session: &Session<'_>, transfer_id: &str, status: &str) -> Value {
    eventually(Duration::from_secs(20), status, || async {
        let t = session
            .get(&format!("/api/transfers/{transfer_id}"))
            .await
            .body;
        (t["transfer"]["status"] == status).then_some(t)
    })
    .await
}

/// Registers a flow answering `number` with the AI stand-in.
pub(crate) async fn register_flow(app: &TestApp, flow_id: &str, number: &str, seconds: u32) {
    app.admin()
        .post(
            "/admin/register-flow",
            json!({"flow_id": flow_id, "phone_numbers": [number], "webhook_url": agent_stand_in(app, seconds), "name": "Support line"}),
        )
        .await
        .expect(201);
}

/// Places a call the AI agent keeps live, and waits until it is answered.
pub(crate) async fn live_call(app: &TestApp, seconds: u32) -> (String, String) {
    let flow_id = format!("flow-{}", uuid::Uuid::now_v7().simple());
    let number = own_number(&app.admin()).await;
    register_flow(app, &flow_id, &number, seconds).await;
    let made = app
        .admin()
        .post(
            "/api/calls/make",
            json!({"to": number_ending("1234"), "message": "Hi, this is Vocelio.", "flow_id": flow_id}),
        )
        .await
        .expect(201);
    let sid = made.body["call_sid"].as_str().expect("call_sid").to_owned();
    let call_id = made.body["call_id"].as_str().expect("call_id").to_owned();
    wait_status(&app.admin(), &sid, "in-progress").await;
    (sid, call_id)
}

#[tokio::test]
async fn a_call_made_like_the_app_rings_answers_and_completes_everywhere_the_app_looks() {
    let app = spawn_app_with(&[("TWILIO_STATUS_STALE_SECONDS", "1")]).await;
    let admin = app.admin();
    let to = number_ending("5678");
    let ours = own_number(&admin).await;
    // The Call Center page's request, with one of our voices.
    let made = admin
        .post(
            "/api/calls/make",
            json!({"to": to, "message": "Hello from Vocelio. Your order has shipped.",
                   "voice_settings": {"provider": "azure", "voice_id": "en-US-AriaNeural", "tier": "regular"},
                   "pricing": {"tier": "regular"}}),
        )
        .await
        .expect(201);
    let sid = made.body["call_sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!(made.body["to"], to.as_str());
    // Presented as the tenant's own number (its first, when the request names none).
    assert_eq!(made.body["from"], ours.as_str());
    assert!(matches!(
        made.body["status"].as_str(),
        Some("queued" | "initiated" | "ringing" | "in-progress" | "completed")
    ));
    let call_id = made.body["call_id"].as_str().unwrap().to_owned();

    // The app polls the status until it ends.
    let done = wait_status(&admin, &sid, "completed").await;
    assert_eq!(done["call_id"], call_id.as_str());
    assert_eq!(done["direction"], "outbound-api");
    assert!(done["end_time"].is_string());
    // The same by our call id.
    assert_eq!(status_of(&admin, &call_id).await["call_sid"], sid.as_str());

    // Twilio played our Azure audio (a presigned S3 URL it could fetch), then hung up.
    let simulated = app.twilio.call(&sid).expect("the simulator knows the call");
    assert_eq!(
        simulated.events,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let play = simulated
        .verbs
        .iter()
        .find(|v| v.starts_with("Play:"))
        .expect("a Play verb");
    assert!(
        play.contains("X-Amz-Signature") && play.contains("/tts/azure/"),
        "{play}"
    );
    assert!(
        !simulated.verbs.iter().any(|v| v.starts_with("Error")),
        "{:?}",
        simulated.verbs
    );
    assert!(simulated.verbs.iter().any(|v| v == "Hangup"));

    // The call log has it, with Twilio's duration; the event log saw it ring, go live, end.
    let logs = admin
        .get("/api/calls/logs?date_range=1day")
        .await
        .expect(200);
    let row = logs.body["call_logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == call_id.as_str())
        .expect("the call is in the logs")
        .clone();
    assert_eq!(row["status"], "completed");
    assert_eq!(row["call_sid"], sid.as_str());
    assert_eq!(row["total_duration"].as_u64(), simulated.duration);
    // Twilio prices a call after it ends: a status read once the stored one is stale
    // fetches the price, and the log shows it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let priced = status_of(&admin, &sid).await;
    let price: f64 = simulated
        .price
        .as_deref()
        .expect("the simulator priced it")
        .parse()
        .unwrap();
    assert_eq!(priced["price"].as_f64(), Some(price));
    assert!(price < 0.0);
    let logs = admin
        .get("/api/calls/logs?date_range=1day")
        .await
        .expect(200);
    let row = logs.body["call_logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == call_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["telephony_price"].as_f64(), Some(price));
    let statuses: Vec<String> = events_of(&app, &app.tenant)
        .await
        .iter()
        .filter(|e| e["data"]["call_id"] == call_id.as_str() && e["type"] == "call_status_update")
        .map(|e| e["data"]["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses.first().map(String::as_str), Some("ringing"));
    assert!(statuses.contains(&"active".to_owned()), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("completed"));
    let ended = events_of(&app, &app.tenant)
        .await
        .iter()
        .filter(|e| e["type"] == "call_ended" && e["data"]["call_id"] == call_id.as_str())
        .count();
    assert_eq!(ended, 1);
    // The message's speech is counted against the call.
    let usage = admin
        .get(&format!("/usage/calls/{call_id}"))
        .await
        .expect(200);
    assert_eq!(usage.body["usage"]["requests"], 1, "{}", usage.body);
}

#[tokio::test]
async fn a_live_call_shows_in_both_monitors_and_ends_on_request() {
    let app = spawn_app().await;
    let admin = app.admin();
    let (sid, call_id) = live_call(&app, 600).await;
    let active = admin.get("/api/calls/active").await.expect(200);
    let row = active.body["active_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["call_id"] == call_id.as_str())
        .expect("row")
        .clone();
    assert_eq!(row["status"], "active");
    assert_eq!(row["call_sid"], sid.as_str());
    let admin_rows = admin.get("/admin/active-calls").await.expect(200);
    let row = &admin_rows.body["active_calls"][0];
    assert_eq!(row["call_sid"], sid.as_str());
    assert!(row["flow_id"].as_str().unwrap().starts_with("flow-"));
    assert_eq!(row["status"], "in-progress");
    assert!(row["phone_number"].as_str().unwrap().starts_with("+1415"));

    // Mute and hold need a conference: this call is with the AI only.
    let refused = admin
        .post(&format!("/api/calls/{sid}/mute"), json!({"muted": true}))
        .await
        .expect(409);
    assert_eq!(refused.code(), "not_in_conference");

    // The app's hang-up button (its DELETE fallback works the same).
    let ended = admin
        .post(&format!("/api/calls/{sid}/end"), json!({}))
        .await
        .expect(200);
    assert_eq!(ended.body["status"], "completed");
    assert!(app.twilio.call(&sid).unwrap().status == "completed");
    assert!(
        admin.get("/api/calls/active").await.body["active_calls"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    admin.delete(&format!("/api/calls/{sid}")).await.expect(200);
    // Twilio's completed callback arrives after our own end: still one call_ended.
    eventually(
        Duration::from_secs(5),
        "Twilio's final callback",
        || async {
            let s = status_of(&admin, &sid).await;
            s["duration"].as_u64().is_some().then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ended = events_of(&app, &app.tenant)
        .await
        .iter()
        .filter(|e| e["type"] == "call_ended")
        .count();
    assert_eq!(ended, 1);
}

#[tokio::test]
async fn what_twilio_would_refuse_never_leaves_and_a_retry_never_dials_twice() {
    let app = spawn_app().await;
    let admin = app.admin();
    own_number(&admin).await;
    // (The simulator serves the whole run: count what reaches this tenant's own account.)
    let account = app
        .twilio
        .accounts()
        .into_iter()
        .find(|a| a.friendly_name == format!("vocelio:{}", app.tenant))
        .expect("the tenant's subaccount")
        .sid;
    let calls_in_account = || {
        app.twilio
            .calls()
            .iter()
            .filter(|c| c.account_sid == account)
            .count()
    };
    let before = calls_in_account();
    // The seed's own example number is not dialable.
    let seed = admin
        .post(
            "/api/calls/make",
            json!({"to": "+1234567890", "message": "Hello! This is a test call."}),
        )
        .await
        .expect(422);
    assert_eq!(seed.body["details"][0]["field"], "to");
    let missing = admin
        .post("/api/calls/make", json!({"message": "Hi"}))
        .await
        .expect(422);
    assert_eq!(missing.body["details"][0]["field"], "to");
    admin
        .post(
            "/api/calls/make",
            json!({"to_number": "+14155550123", "from_number": "12"}),
        )
        .await
        .expect(422);
    admin
        .post(
            "/api/calls/make",
            json!({"to": "+14155550123", "message": "x".repeat(1001)}),
        )
        .await
        .expect(422);
    admin
        .post(
            "/api/calls/make",
            json!({"to": "+14155550123", "flow_id": "no-such-flow"}),
        )
        .await
        .expect(422);
    assert_eq!(calls_in_account(), before, "nothing reached Twilio");

    // Hostile text is spoken, never obeyed.
    let hostile = "</Say><Dial>+19005550100</Dial><Say>";
    let made = admin
        .post(
            "/api/calls/make",
            json!({"to_number": number_ending("4321"), "message": hostile}),
        )
        .await
        .expect(201);
    let sid = made.body["call_sid"].as_str().unwrap().to_owned();
    wait_status(&admin, &sid, "completed").await;
    let verbs = app.twilio.call(&sid).unwrap().verbs;
    assert!(verbs.contains(&format!("Say:{hostile}")), "{verbs:?}");
    assert!(!verbs.iter().any(|v| v.starts_with("Dial")), "{verbs:?}");

    // The same Idempotency-Key twice: one call at Twilio, the same answer twice.
    let key = format!("make-{}", uuid::Uuid::now_v7());
    let once = number_ending("2222");
    let body = json!({"to": once, "message": "Once only"});
    let first = admin
        .clone()
        .header("Idempotency-Key", &key)
        .post("/api/calls/make", body.clone())
        .await
        .expect(201);
    let second = admin
        .clone()
        .header("Idempotency-Key", &key)
        .post("/api/calls/make", body)
        .await
        .expect(201);
    assert_eq!(first.body["call_sid"], second.body["call_sid"]);
    assert_eq!(
        app.twilio.calls().iter().filter(|c| c.to == once).count(),
        1
    );
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // Busy, no answer and failure end the call in the matching state.
    for (last4, twilio, ours) in [
        ("0002", "busy", "missed"),
        ("0003", "no-answer", "missed"),
        ("0004", "failed", "failed"),
    ] {
        let made = admin
            .post(
                "/api/calls/make",
                json!({"to": number_ending(last4), "message": "Hi"}),
            )
            .await
            .expect(201);
        let sid = made.body["call_sid"].as_str().unwrap().to_owned();
        let status = wait_status(&admin, &sid, twilio).await;
        assert_eq!(status["call_status"], ours);
    }
}

#[tokio::test]
async fn an_inbound_call_is_answered_by_its_flow_and_unknown_numbers_politely_refused() {
    let app = spawn_app().await;
    let admin = app.admin();
    let number = own_number(&admin).await;
    register_flow(&app, "support", &number, 300).await;
    // One number, one flow per tenant; and one tenant per number.
    let clash = admin
        .post(
            "/admin/register-flow",
            json!({"flow_id": "sales", "phone_numbers": [number]}),
        )
        .await
        .expect(409);
    assert_eq!(clash.code(), "number_taken");
    // Another tenant cannot map (nor buy) a number this one owns.
    let other = app.user_in(&crate::helpers::new_tenant(), Role::Admin, "admin-2");
    let squat = other
        .post(
            "/admin/register-flow",
            json!({"flow_id": "support", "phone_numbers": [number]}),
        )
        .await
        .expect(403);
    assert_eq!(squat.code(), "number_not_owned");
    other
        .post("/api/numbers/buy", json!({"phone_number": number}))
        .await
        .expect(409);
    app.agent("ana")
        .post(
            "/admin/register-flow",
            json!({"flow_id": "x", "phone_numbers": [number_ending("7003")]}),
        )
        .await
        .expect(403);

    let caller = number_ending("3333");
    let sid = app
        .twilio
        .inbound(&caller, &number)
        .await
        .expect("inbound call");
    let row = eventually(Duration::from_secs(10), "the inbound call", || async {
        admin.get("/api/calls/active").await.body["active_calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["call_sid"] == sid.as_str() && r["status"] == "active")
            .cloned()
    })
    .await;
    assert_eq!(row["caller_number"], caller.as_str());
    assert_eq!(row["current_flow"], "support");
    let verbs = app.twilio.call(&sid).unwrap().verbs;
    assert!(
        verbs
            .iter()
            .any(|v| v.starts_with("Redirect:") && v.contains("/__sim/agent")),
        "{verbs:?}"
    );
    // The other tenant sees nothing of it.
    assert!(other.get(&format!("/api/calls/{sid}/status")).await.status == 404);
    admin
        .post(&format!("/api/calls/{sid}/end"), json!({}))
        .await
        .expect(200);

    // Unregistered (the guide's DELETE with a query): the number is no longer answered.
    admin
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/admin/unregister-flow?phone_number={}",
                number.replace('+', "%2B")
            ),
            None,
        )
        .await
        .expect(200);
    let sid = app
        .twilio
        .inbound(&caller, &number)
        .await
        .expect("inbound call");
    let verbs = eventually(Duration::from_secs(10), "the refusal", || async {
        let call = app.twilio.call(&sid)?;
        (call.status == "completed").then_some(call.verbs)
    })
    .await;
    assert!(
        verbs.iter().any(|v| v.contains("not in service")),
        "{verbs:?}"
    );
    assert_eq!(verbs.last().map(String::as_str), Some("Hangup"));
    assert!(admin.get(&format!("/api/calls/{sid}/status")).await.status == 404);
    // Released (it still answers nothing), the other tenant may buy and map it.
    let listed = admin.get("/api/numbers").await.expect(200);
    let sid = listed.body["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["phone_number"] == number.as_str())
        .map(|n| n["sid"].as_str().unwrap().to_owned())
        .unwrap();
    admin
        .delete(&format!("/api/numbers/{sid}"))
        .await
        .expect(200);
    other
        .post("/api/numbers/buy", json!({"phone_number": number}))
        .await
        .expect(201);
    other
        .post(
            "/admin/register-flow",
            json!({"flow_id": "support", "phone_numbers": [number]}),
        )
        .await
        .expect(201);
}

/// Signs a form callback the way Twilio does, with `token`.
fn signed(token: &str, url: &str, params: &[(&str, &str)]) -> (String, String) {
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature = telephony::signature::sign(token, url, &pairs);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    (signature, body)
}

async fn post_hook(
    app: &TestApp,
    url: &str,
    signature: Option<&str>,
    body: String,
    headers: &[(&str, &str)],
) -> u16 {
    let mut request = app
        .http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = signature {
        request = request.header("x-twilio-signature", s);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("webhook").status().as_u16()
}

#[tokio::test]
async fn callbacks_are_signed_ordered_and_counted_once() {
    let app = spawn_app().await;
    let admin = app.admin();
    own_number(&admin).await;
    let made = admin
        .post(
            "/api/calls/make",
            json!({"to": number_ending("5555"), "message": "Hi"}),
        )
        .await
        .expect(201);
    let sid = made.body["call_sid"].as_str().unwrap().to_owned();
    let call_id = made.body["call_id"].as_str().unwrap().to_owned();
    let done = wait_status(&admin, &sid, "completed").await;
    let ended_events = || async {
        events_of(&app, &app.tenant)
            .await
            .iter()
            .filter(|e| e["data"]["call_id"] == call_id.as_str())
            .count()
    };
    let before = ended_events().await;

    // The callback URL we gave Twilio for this call (its query signed with our key), and
    // the tenant's own Twilio account, whose token signs its callbacks.
    let url = app
        .twilio
        .callbacks()
        .into_iter()
        .find(|c| c.kind == "status" && c.params.iter().any(|(k, v)| k == "CallSid" && *v == sid))
        .expect("a status callback")
        .url;
    assert!(url.contains("sig="), "{url}");
    let account = app
        .twilio
        .accounts()
        .into_iter()
        .find(|a| a.friendly_name == format!("vocelio:{}", app.tenant))
        .expect("the tenant's subaccount");
    let token = account.auth_token.as_str();
    let late_ringing = [
        ("AccountSid", account.sid.as_str()),
        ("CallSid", sid.as_str()),
        ("CallStatus", "ringing"),
        ("SequenceNumber", "1"),
        ("CallbackSource", "call-progress-events"),
    ];
    // Forged: no signature, a wrong one, a tampered body, a URL naming another tenant, a
    // URL without our own signature, another account, our main account's token.
    let (signature, body) = signed(token, &url, &late_ringing);
    assert_eq!(post_hook(&app, &url, None, body.clone(), &[]).await, 403);
    assert_eq!(
        post_hook(&app, &url, Some("bm90IGEgc2lnbmF0dXJl"), body.clone(), &[]).await,
        403
    );
    let tampered = body.replace("ringing", "in-progress");
    assert_eq!(
        post_hook(&app, &url, Some(&signature), tampered, &[]).await,
        403
    );
    let other_tenant_url = url.replace(&app.tenant, "someone-else");
    let (other_sig, other_body) = signed(token, &other_tenant_url, &late_ringing);
    assert_eq!(
        post_hook(&app, &other_tenant_url, Some(&other_sig), other_body, &[]).await,
        403
    );
    let hooks = &stand().hooks_base;
    let unsigned_query = format!(
        "{hooks}/twilio/status?tenant={}&call_id={call_id}",
        app.tenant
    );
    let (unsigned_sig, unsigned_body) = signed(token, &unsigned_query, &late_ringing);
    assert_eq!(
        post_hook(
            &app,
            &unsigned_query,
            Some(&unsigned_sig),
            unsigned_body,
            &[]
        )
        .await,
        403
    );
    let mut foreign = late_ringing;
    foreign[0] = ("AccountSid", "AC00000000000000000000000000000000");
    let (foreign_sig, foreign_body) = signed(token, &url, &foreign);
    assert_eq!(
        post_hook(&app, &url, Some(&foreign_sig), foreign_body, &[]).await,
        403
    );
    let (main_sig, main_body) = signed(twilio_sim::AUTH_TOKEN, &url, &late_ringing);
    assert_eq!(
        post_hook(&app, &url, Some(&main_sig), main_body, &[]).await,
        403
    );

    // Genuine but late (ringing after completed) and repeated (completed again): accepted,
    // and nothing moves or is counted again.
    assert_eq!(
        post_hook(&app, &url, Some(&signature), body, &[]).await,
        204
    );
    let duplicate = [
        ("AccountSid", account.sid.as_str()),
        ("CallSid", sid.as_str()),
        ("CallStatus", "completed"),
        ("SequenceNumber", "3"),
        ("CallDuration", "999"),
    ];
    let (dup_sig, dup_body) = signed(token, &url, &duplicate);
    assert_eq!(
        post_hook(&app, &url, Some(&dup_sig), dup_body.clone(), &[]).await,
        204
    );
    let after = status_of(&admin, &sid).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["duration"], done["duration"]);
    assert_eq!(ended_events().await, before);
    // Counted once against the tenant's minutes, with Twilio's own duration.
    let policy = admin.get("/api/telephony/policy").await.expect(200);
    assert_eq!(
        policy.body["usage"]["seconds_today"], done["duration"],
        "{}",
        policy.body
    );
    // A genuine report of another call of the tenant cannot move this one.
    let stray = [
        ("AccountSid", account.sid.as_str()),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("CallStatus", "in-progress"),
        ("SequenceNumber", "9"),
    ];
    let (stray_sig, stray_body) = signed(token, &url, &stray);
    assert_eq!(
        post_hook(&app, &url, Some(&stray_sig), stray_body, &[]).await,
        204
    );
    assert_eq!(status_of(&admin, &sid).await["call_sid"], sid.as_str());

    // The URL is the configured public one: the same request signed for the URL it was
    // sent to (a Host the client chose) is refused; signed for the public URL it is taken
    // wherever it arrives (a proxy in between).
    let direct = url.replace(hooks.as_str(), &app.base);
    let (direct_sig, direct_body) = signed(token, &direct, &duplicate);
    assert_eq!(
        post_hook(
            &app,
            &direct,
            Some(&direct_sig),
            direct_body,
            &[("x-forwarded-proto", "http")]
        )
        .await,
        403
    );
    assert_eq!(
        post_hook(&app, &direct, Some(&dup_sig), dup_body, &[]).await,
        204
    );
}

#[tokio::test]
async fn department_transfer_holds_the_caller_and_the_agent_who_answers_joins_warm() {
    let app = spawn_app().await;
    let admin = app.admin();
    let sup = app.supervisor();
    let sales = admin.create_department("Sales", "+1555-SALES-01").await;
    sup.available_agent("ana", "Sales", &[], &["en"]).await;
    // Ana's softphone registers as her tenant-scoped identity.
    let identity = app
        .agent("ana")
        .get("/api/telephony/identity")
        .await
        .expect(200);
    let softphone = format!("client:{}", identity.body["identity"].as_str().unwrap());
    let (sid, call_id) = live_call(&app, 900).await;

    let raised = admin
        .post(
            &format!("/api/calls/{call_id}/transfer"),
            json!({"transfer_to": id_of(&sales), "context": "Wants to upgrade to the annual plan", "mode": "warm"}),
        )
        .await
        .expect(201);
    let transfer_id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(raised.body["agent_id"], "ana");
    assert_eq!(raised.body["mode"], "warm");

    // The agent's softphone rings, hears the context, joins; the offer is accepted.
    let transfer = eventually(Duration::from_secs(20), "the agent connected", || async {
        let t = sup.get(&format!("/api/transfers/{transfer_id}")).await.body;
        (t["transfer"]["status"] == "connected").then_some(t)
    })
    .await;
    assert_eq!(transfer["transfer"]["agent_id"], "ana");
    let room = format!("Conference:transfer-{transfer_id}");
    let agent_leg = eventually(Duration::from_secs(10), "the agent in the room", || async {
        app.twilio
            .calls()
            .into_iter()
            .find(|c| c.to == softphone && c.verbs.contains(&room))
    })
    .await;
    assert!(
        agent_leg.verbs[0].starts_with("Say:") && agent_leg.verbs[0].contains("annual plan"),
        "{:?}",
        agent_leg.verbs
    );
    assert!(app.twilio.call(&sid).unwrap().verbs.contains(&room));
    let row = eventually(Duration::from_secs(10), "the call connected", || async {
        admin.get("/api/calls/active").await.body["active_calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["call_id"] == call_id.as_str() && r["status"] == "connected")
            .cloned()
    })
    .await;
    assert_eq!(row["assigned_agent"], "ana");
    assert_eq!(row["current_department"], "Sales");

    // Mute and hold act on the caller's place in the conference.
    eventually(Duration::from_secs(10), "the conference SID", || async {
        let s = status_of(&admin, &sid).await;
        (s["in_conference"] == true).then_some(())
    })
    .await;
    let muted = admin
        .post(&format!("/api/calls/{sid}/mute"), json!({"muted": true}))
        .await
        .expect(200);
    assert_eq!(muted.body["muted"], true);
    assert!(app.twilio.call(&sid).unwrap().muted);
    let held = admin
        .post(&format!("/api/calls/{sid}/hold"), json!({"hold": true}))
        .await
        .expect(200);
    assert_eq!(held.body["call_status"], "on_hold");
    assert!(app.twilio.call(&sid).unwrap().hold);
    let back = admin
        .post(&format!("/api/calls/{sid}/hold"), json!({"hold": false}))
        .await
        .expect(200);
    assert_eq!(back.body["call_status"], "connected");
    admin
        .post(&format!("/api/calls/{sid}/mute"), json!({"muted": "yes"}))
        .await
        .expect(422);

    // The caller hangs up: the call ends, Ana's leg with it, the transfer closes.
    assert!(app.twilio.hangup(&sid));
    wait_status(&admin, &sid, "completed").await;
    let closed = eventually(Duration::from_secs(10), "the transfer closed", || async {
        let t = sup.get(&format!("/api/transfers/{transfer_id}")).await.body;
        (t["transfer"]["status"] != "connected").then_some(t)
    })
    .await;
    assert!(
        matches!(
            closed["transfer"]["status"].as_str(),
            Some("completed" | "cancelled")
        ),
        "{closed}"
    );
    eventually(Duration::from_secs(10), "the agent's leg ended", || async {
        let leg = app.twilio.calls().into_iter().find(|c| c.to == softphone)?;
        (leg.status == "completed").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_cold_transfer_dials_the_number_and_the_call_ends_after_it() {
    let app = spawn_app().await;
    let admin = app.admin();
    let (sid, call_id) = live_call(&app, 900).await;
    let target = number_ending("8888");
    // The guide's request.
    let out = admin
        .post(
            "/calls/transfer",
            json!({"call_sid": sid, "transfer_to": target}),
        )
        .await
        .expect(201);
    assert_eq!(out.body["mode"], "cold");
    let child = eventually(Duration::from_secs(10), "the dialled leg", || async {
        app.twilio
            .calls()
            .into_iter()
            .find(|c| c.parent_call_sid.as_deref() == Some(sid.as_str()))
    })
    .await;
    assert_eq!(child.to, target);
    assert_eq!(child.direction, "outbound-dial");
    assert!(
        app.twilio
            .call(&sid)
            .unwrap()
            .verbs
            .contains(&format!("Dial:{target}"))
    );
    // The dialled party talks, hangs up; the caller's call ends after the transfer.
    let done = wait_status(&admin, &sid, "completed").await;
    assert_eq!(done["call_id"], call_id.as_str());
    let call = admin
        .get(&format!("/api/calls/{call_id}"))
        .await
        .expect(200);
    assert_eq!(call.body["call"]["transfer_count"], 1);
    assert_eq!(
        call.body["call"]["carrier"]["transferred_to"],
        target.as_str()
    );
    // A warm transfer needs a department.
    let (_, other) = live_call(&app, 900).await;
    admin
        .post(
            &format!("/api/calls/{other}/transfer"),
            json!({"transfer_to": target, "mode": "warm"}),
        )
        .await
        .expect(422);
    admin
        .post(&format!("/api/calls/{other}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn without_twilio_credentials_telephony_says_so_and_the_rest_keeps_working() {
    let app = spawn_app_with(&[("LOCAL_TWILIO_SIMULATOR", "off")]).await;
    let admin = app.admin();
    let refused = admin
        .post(
            "/api/calls/make",
            json!({"to": "+14155550123", "message": "Hi"}),
        )
        .await
        .expect(503);
    assert_eq!(refused.code(), "telephony_not_configured");
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("TWILIO_ACCOUNT_SID")
    );
    admin
        .get("/api/calls/CA0123456789abcdef0123456789abcdef/status")
        .await
        .expect(503);
    let hook = app
        .http()
        .post(format!("{}/twilio/status", app.base))
        .form(&[("CallSid", "CA0123456789abcdef0123456789abcdef")])
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 503);
    admin.get("/api/departments").await.expect(200);
    admin.get("/api/calls/active").await.expect(200);
    admin.get("/tiers").await.expect(200);
}
