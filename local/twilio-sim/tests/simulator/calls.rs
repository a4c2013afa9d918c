//! Call lifecycles: outbound and inbound, outcomes by number, `<Dial>`, `<Redirect>`,
//! updates.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use twilio_sim::{ACCOUNT_SID, SimOptions};

use crate::common::*;

const FROM: &str = "+15005550006";

/// Calls ring for 500 simulated seconds (10 s): time enough to act on them while ringing.
fn slow_ringing() -> SimOptions {
    SimOptions {
        ring_seconds: 500.0,
        ..options()
    }
}

async fn create(sim: &twilio_sim::Simulator, pairs: &[(&str, &str)]) -> String {
    let (status, call) = post(&format!("{}/Calls.json", api(sim)), pairs).await;
    assert_eq!(status, 201, "{call}");
    assert_eq!(call["status"], "queued");
    call["sid"].as_str().expect("sid").to_owned()
}

#[tokio::test]
async fn an_outbound_call_runs_its_lifecycle_with_signed_callbacks() {
    let sim = simulator(options()).await;
    let receiver = Receiver::start().await;
    let status_url = receiver.url("/status?tenant=acme");
    let (status, created) = post(
        &format!("{}/Calls.json", api(&sim)),
        &[
            ("To", "+14155550123"),
            ("From", FROM),
            (
                "Twiml",
                "<Response><Say>Hello there</Say><Pause length=\"2\"/></Response>",
            ),
            ("StatusCallback", &status_url),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing answered"),
            ("StatusCallbackEvent", "completed"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().expect("sid").to_owned();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!(created["account_sid"], ACCOUNT_SID);
    assert_eq!(created["status"], "queued");
    assert_eq!(created["direction"], "outbound-api");
    assert_eq!(created["to_formatted"], "(415) 555-0123");
    assert_eq!(created["api_version"], "2010-04-01");
    assert_eq!(created["queue_time"], "0");
    assert_eq!(created["price_unit"], "USD");
    assert!(created["price"].is_null() && created["duration"].is_null());
    assert!(created["start_time"].is_null() && created["parent_call_sid"].is_null());
    assert_eq!(
        created["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json")
    );
    let created_at = created["date_created"].as_str().expect("date_created");
    OffsetDateTime::parse(created_at, &Rfc2822).expect("RFC 2822 date");

    let done = wait_over(&sim, &sid).await;
    assert_eq!(done.status, "completed");
    assert_eq!(done.verbs, ["Say:Hello there", "Pause:2"]);
    let hits = wait_hits(&receiver, "/status", 4).await;
    assert_eq!(hits.len(), 4);
    assert_eq!(
        values(&hits, "CallStatus"),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert_eq!(values(&hits, "SequenceNumber"), ["0", "1", "2", "3"]);
    assert_eq!(
        done.events,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    for hit in &hits {
        assert!(hit.signature_ok(), "bad signature on {hit:?}");
        assert_eq!(hit.url, status_url);
        assert_eq!(hit.param("CallSid"), Some(sid.as_str()));
        assert_eq!(hit.param("AccountSid"), Some(ACCOUNT_SID));
        assert_eq!(hit.param("Direction"), Some("outbound-api"));
        assert_eq!(hit.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(hit.param("CallbackSource"), Some("call-progress-events"));
        assert_eq!(hit.param("From"), Some(FROM));
        assert_eq!(hit.param("Called"), Some("+14155550123"));
        OffsetDateTime::parse(hit.param("Timestamp").expect("Timestamp"), &Rfc2822)
            .expect("RFC 2822 timestamp");
    }
    assert!(hits[..3].iter().all(|h| h.param("CallDuration").is_none()));
    let duration = done.duration.expect("duration");
    // Say (1 s) + Pause (2 s), give or take scheduling.
    assert!((2..=15).contains(&duration), "{duration}");
    assert_eq!(
        hits[3].param("CallDuration"),
        Some(duration.to_string().as_str())
    );
    assert_eq!(hits[3].param("Duration"), Some("1"));

    let (status, fetched) = get(&format!("{}/Calls/{sid}.json", api(&sim))).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["status"], "completed");
    assert_eq!(fetched["duration"], duration.to_string());
    assert_eq!(fetched["price"], "-0.01400");
    assert_eq!(done.price.as_deref(), Some("-0.01400"));
    for field in ["start_time", "end_time", "date_updated"] {
        OffsetDateTime::parse(fetched[field].as_str().expect(field), &Rfc2822).expect(field);
    }
    let records = sim.callbacks();
    assert_eq!(records.len(), 4);
    assert!(
        records
            .iter()
            .all(|r| r.kind == "status" && r.response_status == Some(200))
    );
}

#[tokio::test]
async fn numbers_ring_out_by_their_last_digits() {
    let sim = simulator(options()).await;
    let receiver = Receiver::start().await;
    let status_url = receiver.url("/status");
    let mut sids = Vec::new();
    for to in ["+14155550002", "+14155550003", "+14155550004"] {
        sids.push(
            create(
                &sim,
                &[
                    ("To", to),
                    ("From", FROM),
                    ("Url", &receiver.url("/never")),
                    ("StatusCallback", &status_url),
                ],
            )
            .await,
        );
    }
    let mut finals = Vec::new();
    for sid in &sids {
        let call = wait_over(&sim, sid).await;
        assert_eq!(call.duration, Some(0));
        assert_eq!(call.price, None);
        assert!(call.verbs.is_empty());
        finals.push(call.status);
    }
    assert_eq!(finals, ["busy", "no-answer", "failed"]);
    // Only `completed` was subscribed (the default): one callback each, carrying the
    // final status.
    let hits = wait_hits(&receiver, "/status", 3).await;
    for (sid, status) in sids.iter().zip(["busy", "no-answer", "failed"]) {
        let mine: Vec<_> = hits
            .iter()
            .filter(|h| h.param("CallSid") == Some(sid.as_str()))
            .collect();
        assert_eq!(mine.len(), 1, "{sid}");
        assert_eq!(mine[0].param("CallStatus"), Some(status));
        assert_eq!(mine[0].param("SequenceNumber"), Some("0"));
        assert_eq!(mine[0].param("CallDuration"), Some("0"));
        assert!(mine[0].signature_ok());
    }
    assert!(
        receiver.hits("/never").is_empty(),
        "unanswered calls fetch no TwiML"
    );
    let (_, fetched) = get(&format!("{}/Calls/{}.json", api(&sim), sids[0])).await;
    assert_eq!(
        (fetched["status"].as_str(), fetched["duration"].as_str()),
        (Some("busy"), Some("0"))
    );
    assert!(fetched["price"].is_null());
}

#[tokio::test]
async fn a_dial_places_a_child_leg_and_reports_to_its_action() {
    let sim = simulator(options()).await;
    let receiver = Receiver::start().await;
    receiver.serve(
        "/voice",
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello there</Say><Dial action="/action?step=1" timeout="20"><Number statusCallback="/child-status" statusCallbackEvent="initiated ringing answered completed">+14155550123</Number></Dial><Say>not reached</Say></Response>"#,
    );
    receiver.serve("/action", "<Response><Say>Goodbye</Say></Response>");
    receiver.serve(
        "/voice-busy",
        r#"<Response><Dial action="/action-busy"><Number>+14155550002</Number></Dial></Response>"#,
    );
    receiver.serve("/action-busy", "<Response><Hangup/></Response>");
    let parent = create(
        &sim,
        &[
            ("To", "+14155550100"),
            ("From", FROM),
            ("Url", &receiver.url("/voice")),
        ],
    )
    .await;
    let busy_parent = create(
        &sim,
        &[
            ("To", "+14155550101"),
            ("From", FROM),
            ("Url", &receiver.url("/voice-busy")),
        ],
    )
    .await;

    let done = wait_over(&sim, &parent).await;
    assert_eq!(done.status, "completed");
    assert_eq!(
        done.verbs,
        ["Say:Hello there", "Dial:+14155550123", "Say:Goodbye"]
    );
    let child = sim
        .calls()
        .into_iter()
        .find(|c| c.parent_call_sid.as_deref() == Some(parent.as_str()))
        .expect("a child leg");
    assert_eq!(child.direction, "outbound-dial");
    assert_eq!(child.to, "+14155550123");
    assert_eq!(child.from, FROM);
    assert_eq!(child.status, "completed");
    let talked = child.duration.expect("child duration");
    // talk_seconds is 5.
    assert!((4..=30).contains(&talked), "{talked}");

    let voice = receiver.hits("/voice");
    assert_eq!(voice.len(), 1);
    assert_eq!(voice[0].param("CallStatus"), Some("in-progress"));
    assert_eq!(voice[0].param("Direction"), Some("outbound-api"));
    assert!(voice[0].signature_ok());

    let action = wait_hits(&receiver, "/action", 1).await;
    assert_eq!(action.len(), 1);
    let action = &action[0];
    assert!(action.signature_ok(), "{action:?}");
    assert!(action.url.ends_with("/action?step=1"));
    assert_eq!(action.param("CallSid"), Some(parent.as_str()));
    assert_eq!(action.param("DialCallStatus"), Some("completed"));
    assert_eq!(action.param("DialCallSid"), Some(child.sid.as_str()));
    assert_eq!(
        action.param("DialCallDuration"),
        Some(talked.to_string().as_str())
    );

    let child_hits = wait_hits(&receiver, "/child-status", 4).await;
    assert_eq!(
        values(&child_hits, "CallStatus"),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert_eq!(values(&child_hits, "SequenceNumber"), ["0", "1", "2", "3"]);
    for hit in &child_hits {
        assert_eq!(hit.param("ParentCallSid"), Some(parent.as_str()));
        assert_eq!(hit.param("Direction"), Some("outbound-dial"));
        assert_eq!(hit.param("CallSid"), Some(child.sid.as_str()));
        assert!(hit.signature_ok());
    }

    let busy = wait_over(&sim, &busy_parent).await;
    assert_eq!(busy.verbs, ["Dial:+14155550002", "Hangup"]);
    let busy_action = wait_hits(&receiver, "/action-busy", 1).await;
    assert_eq!(busy_action[0].param("DialCallStatus"), Some("busy"));
    assert_eq!(busy_action[0].param("DialCallDuration"), Some("0"));
    let kinds: Vec<String> = sim.callbacks().into_iter().map(|r| r.kind).collect();
    assert!(kinds.iter().any(|k| k == "action") && kinds.iter().any(|k| k == "voice"));
}

#[tokio::test]
async fn a_redirect_replaces_the_document() {
    let sim = simulator(options()).await;
    let receiver = Receiver::start().await;
    receiver.serve(
        "/start",
        r#"<Response><Say>One</Say><Redirect method="GET">next?step=2</Redirect><Say>never</Say></Response>"#,
    );
    receiver.serve(
        "/next",
        "<Response><Say>Two</Say><Hangup/><Say>never</Say></Response>",
    );
    let sid = create(
        &sim,
        &[
            ("To", "+14155550123"),
            ("From", FROM),
            ("Url", &receiver.url("/start")),
        ],
    )
    .await;
    let done = wait_over(&sim, &sid).await;
    assert_eq!(
        done.verbs,
        [
            "Say:One".to_owned(),
            format!("Redirect:{}", receiver.url("/next?step=2")),
            "Say:Two".to_owned(),
            "Hangup".to_owned(),
        ]
    );
    let next = receiver.hits("/next");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].method, "GET");
    assert_eq!(next[0].param("step"), Some("2"));
    assert_eq!(next[0].param("CallSid"), Some(sid.as_str()));
    assert!(next[0].signature_ok(), "{:?}", next[0]);
}

#[tokio::test]
async fn updates_redirect_cancel_and_complete_calls() {
    let sim = simulator(options()).await;
    let receiver = Receiver::start().await;
    let status_url = receiver.url("/status");
    let long_call = [
        ("To", "+14155550123"),
        ("From", FROM),
        ("Twiml", "<Response><Pause length=\"600\"/></Response>"),
        ("StatusCallback", status_url.as_str()),
    ];

    // Twiml mid-call: the pause is cut short, the new document runs.
    let sid = create(&sim, &long_call).await;
    wait_status(&sim, &sid, "in-progress").await;
    let call_url = format!("{}/Calls/{sid}.json", api(&sim));
    let (status, updated) = post(
        &call_url,
        &[(
            "Twiml",
            "<Response><Say>You are being transferred</Say><Hangup/></Response>",
        )],
    )
    .await;
    assert_eq!(
        (status, updated["status"].as_str()),
        (200, Some("in-progress"))
    );
    let done = wait_over(&sim, &sid).await;
    assert_eq!(done.status, "completed");
    assert_eq!(
        done.verbs,
        ["Pause:600", "Say:You are being transferred", "Hangup"]
    );
    assert!(done.duration.is_some_and(|d| d < 60), "{:?}", done.duration);
    // Over: no more redirects.
    assert_error(
        &post(&call_url, &[("Url", &receiver.url("/late"))]).await,
        400,
        21220,
    );

    // Status=canceled on a ringing call (a simulator whose calls ring for long).
    let slow = simulator(slow_ringing()).await;
    let ringing = create(
        &slow,
        &[
            ("To", "+14155550123"),
            ("From", FROM),
            ("Twiml", "<Response><Say>never</Say></Response>"),
            ("StatusCallback", status_url.as_str()),
            ("StatusCallbackEvent", "ringing completed"),
        ],
    )
    .await;
    wait_status(&slow, &ringing, "ringing").await;
    let (status, canceled) = post(
        &format!("{}/Calls/{ringing}.json", api(&slow)),
        &[("Status", "canceled")],
    )
    .await;
    assert_eq!(
        (status, canceled["status"].as_str()),
        (200, Some("canceled"))
    );
    assert_eq!(canceled["duration"], "0");
    assert!(canceled["end_time"].is_string());
    let mine = wait_for("the canceled call's callbacks", || {
        let hits: Vec<_> = receiver
            .hits("/status")
            .into_iter()
            .filter(|h| h.param("CallSid") == Some(ringing.as_str()))
            .collect();
        (hits.len() == 2).then_some(hits)
    })
    .await;
    assert_eq!(values(&mine, "CallStatus"), ["ringing", "canceled"]);

    // Status=canceled is ignored once answered; Status=completed hangs up.
    let live = create(&sim, &long_call).await;
    wait_status(&sim, &live, "in-progress").await;
    let live_url = format!("{}/Calls/{live}.json", api(&sim));
    let (status, ignored) = post(&live_url, &[("Status", "canceled")]).await;
    assert_eq!(
        (status, ignored["status"].as_str()),
        (200, Some("in-progress"))
    );
    let (status, completed) = post(&live_url, &[("Status", "completed")]).await;
    assert_eq!(
        (status, completed["status"].as_str()),
        (200, Some("completed"))
    );
    let callback = receiver.url("/status-2");
    let (status, _) = post(&live_url, &[("StatusCallback", &callback)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        sim.call(&live).map(|c| c.verbs),
        Some(vec!["Pause:600".to_owned()])
    );
}

#[tokio::test]
async fn inbound_calls_run_the_voice_url() {
    let sim = simulator(options()).await;
    let receiver = Receiver::start().await;
    assert!(
        sim.inbound("+14155550199", "+18005550100").await.is_err(),
        "no voice URL yet"
    );
    receiver.serve(
        "/inbound",
        "<Response><Say>Welcome to Vocelio</Say><Pause length=\"600\"/></Response>",
    );
    receiver.serve("/reject", "<Response><Reject/></Response>");
    sim.set_inbound_webhooks(
        &receiver.url("/inbound"),
        Some(&receiver.url("/inbound-status")),
    );

    let sid = sim
        .inbound("+14155550199", "+18005550100")
        .await
        .expect("inbound call");
    let live = wait_status(&sim, &sid, "in-progress").await;
    assert_eq!(live.direction, "inbound");
    let voice = wait_hits(&receiver, "/inbound", 1).await;
    assert_eq!(voice[0].param("CallStatus"), Some("ringing"));
    assert_eq!(voice[0].param("Direction"), Some("inbound"));
    assert_eq!(voice[0].param("From"), Some("+14155550199"));
    assert_eq!(voice[0].param("To"), Some("+18005550100"));
    assert!(voice[0].signature_ok());

    // The caller hangs up (over the simulator's HTTP endpoint).
    wait_for("the pause", || {
        sim.call(&sid).filter(|c| c.verbs.len() == 2)
    })
    .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let hangup = client
        .post(format!("{}/__sim/calls/{sid}/hangup", sim.base_url))
        .send()
        .await
        .expect("hangup");
    assert_eq!(hangup.status().as_u16(), 200);
    let done = wait_over(&sim, &sid).await;
    assert_eq!(done.status, "completed");
    assert_eq!(done.price.as_deref(), Some("-0.00850"));
    assert!(!sim.hangup(&sid), "already over");
    let status = wait_hits(&receiver, "/inbound-status", 3).await;
    assert_eq!(
        values(&status, "CallStatus"),
        ["ringing", "in-progress", "completed"]
    );
    assert_eq!(values(&status, "SequenceNumber"), ["0", "1", "2"]);
    assert!(status.iter().all(Hit::signature_ok));

    // Over HTTP, with its own voice URL: <Reject/> ends it busy, never answered.
    let response = client
        .post(format!("{}/__sim/inbound", sim.base_url))
        .json(&serde_json::json!({
            "from": "+14155550198",
            "to": "+18005550100",
            "url": receiver.url("/reject"),
        }))
        .send()
        .await
        .expect("inbound over HTTP");
    assert_eq!(response.status().as_u16(), 201);
    let body: serde_json::Value = response.json().await.expect("json");
    let rejected = body["call_sid"].as_str().expect("call_sid").to_owned();
    let done = wait_over(&sim, &rejected).await;
    assert_eq!(done.status, "busy");
    assert_eq!(done.verbs, ["Reject"]);
    assert_eq!(done.start_time, done.end_time);
    assert_eq!((done.duration, done.price), (Some(0), None));
    let calls: serde_json::Value = client
        .get(format!("{}/__sim/calls", sim.base_url))
        .send()
        .await
        .expect("calls")
        .json()
        .await
        .expect("json");
    assert_eq!(calls.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_caller_hanging_up_ends_the_dialled_leg() {
    let sim = simulator(SimOptions {
        talk_seconds: 10_000.0,
        ..options()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.serve(
        "/dial",
        r#"<Response><Dial action="/dial-done"><Number url="/whisper">+14155550124</Number></Dial></Response>"#,
    );
    receiver.serve(
        "/whisper",
        "<Response><Say>Call from the queue</Say></Response>",
    );
    receiver.serve(
        "/dial-slow",
        r#"<Response><Dial action="/dial-slow-done" timeout="600"><Client>agent_0003</Client></Dial></Response>"#,
    );
    sim.set_inbound_webhooks(&receiver.url("/dial"), None);

    // Bridged after the whisper, then the caller hangs up.
    let caller = sim
        .inbound("+14155550199", "+18005550100")
        .await
        .expect("caller");
    let leg = wait_for("the whispered, bridged leg", || {
        sim.calls().into_iter().find(|c| {
            c.parent_call_sid.as_deref() == Some(caller.as_str())
                && c.status == "in-progress"
                && c.verbs == ["Say:Call from the queue"]
        })
    })
    .await;
    let whisper = wait_hits(&receiver, "/whisper", 1).await;
    assert_eq!(whisper[0].param("CallSid"), Some(leg.sid.as_str()));
    assert_eq!(whisper[0].param("ParentCallSid"), Some(caller.as_str()));
    assert!(whisper[0].signature_ok());
    // Let the whisper finish (1 simulated second) so the leg is bridged.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(sim.hangup(&caller));
    assert_eq!(wait_over(&sim, &leg.sid).await.status, "completed");
    let action = wait_hits(&receiver, "/dial-done", 1).await;
    assert_eq!(action[0].param("CallStatus"), Some("completed"));
    assert_eq!(action[0].param("DialCallStatus"), Some("completed"));
    assert_eq!(action[0].param("DialCallSid"), Some(leg.sid.as_str()));
    assert_eq!(
        sim.call(&caller).map(|c| c.verbs),
        Some(vec!["Dial:+14155550124".to_owned()])
    );

    // Hung up while the leg still rings (a simulator whose calls ring for long): the leg
    // is canceled.
    let slow = simulator(slow_ringing()).await;
    slow.set_inbound_webhooks(&receiver.url("/dial-slow"), None);
    let parent = slow
        .inbound("+14155550198", "+18005550100")
        .await
        .expect("caller");
    let ringing = wait_for("the client leg ringing", || {
        slow.calls().into_iter().find(|c| {
            c.parent_call_sid.as_deref() == Some(parent.as_str()) && c.status == "ringing"
        })
    })
    .await;
    assert_eq!(ringing.to, "client:agent_0003");
    assert!(slow.hangup(&parent));
    assert_eq!(wait_over(&slow, &ringing.sid).await.status, "canceled");
    let action = wait_hits(&receiver, "/dial-slow-done", 1).await;
    assert_eq!(action[0].param("DialCallStatus"), Some("canceled"));

    // The remote party of a ringing call hangs up: no-answer.
    let (_, body) = post(
        &format!("{}/Calls.json", api(&slow)),
        &[
            ("To", "+14155550126"),
            ("From", FROM),
            ("Twiml", "<Response><Say>Hi</Say></Response>"),
        ],
    )
    .await;
    let unanswered = body["sid"].as_str().expect("sid").to_owned();
    wait_status(&slow, &unanswered, "ringing").await;
    assert!(slow.hangup(&unanswered));
    let done = wait_over(&slow, &unanswered).await;
    assert_eq!(
        (done.status.as_str(), done.duration),
        ("no-answer", Some(0))
    );
    assert!(!sim.hangup("CA0123456789abcdef0123456789abcdef"));
}
