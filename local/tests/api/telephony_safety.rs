//! Telephony as an attacker tries it, and as a tenant among many lives it: who may dial,
//! which numbers, whose caller ID; callbacks a tenant's own TwiML points at someone else's
//! call; agents with the same name in two tenants; numbers bought, mapped and released;
//! and the transfer legs that must never drop an agent's answer.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::helpers::{TestApp, events_of, id_of, new_tenant, spawn_app, stand};
use crate::telephony::{
    eventually, live_call, number_ending, own_number, register_flow, status_of, wait_status,
    wait_transfer,
};

/// The Twilio subaccount the simulator holds for `tenant` (created on its first telephony
/// request).
fn subaccount_of(app: &TestApp, tenant: &str) -> twilio_sim::AccountSnapshot {
    let name = format!("vocelio:{tenant}");
    app.twilio
        .accounts()
        .into_iter()
        .find(|a| a.friendly_name == name)
        .expect("the tenant's subaccount")
}

/// The agent's leg of `transfer_id` once it is in the transfer's conference.
async fn agent_leg(app: &TestApp, transfer_id: &str) -> twilio_sim::CallSnapshot {
    let room = format!("Conference:transfer-{transfer_id}");
    eventually(
        Duration::from_secs(20),
        "the agent's leg in the room",
        || async {
            app.twilio
                .calls()
                .into_iter()
                .find(|c| c.to.starts_with("client:") && c.verbs.contains(&room))
        },
    )
    .await
}

/// The `client:` address of `agent_id`'s softphone (their tenant-scoped identity).
async fn softphone_of(app: &TestApp, agent_id: &str) -> String {
    let identity = app
        .agent(agent_id)
        .get("/api/telephony/identity")
        .await
        .expect(200);
    format!("client:{}", identity.body["identity"].as_str().unwrap())
}

/// Transfers live call `call_id` to department `department`; returns the transfer id.
async fn raise(session: &crate::helpers::Session<'_>, call_id: &str, department: &str) -> String {
    let raised = session
        .post(
            &format!("/api/calls/{call_id}/transfer"),
            json!({"transfer_to": department}),
        )
        .await
        .expect(201);
    raised.body["transfer_id"].as_str().unwrap().to_owned()
}

/// Whether the simulator ever saw a call to `to`.
fn dialled(app: &TestApp, to: &str) -> bool {
    app.twilio.calls().iter().any(|c| c.to == to)
}

#[tokio::test]
async fn agents_neither_dial_nor_control_calls_unless_allowed() {
    let app = spawn_app().await;
    let admin = app.admin();
    own_number(&admin).await;
    let ana = app.agent("ana");
    let to = number_ending("7711");
    let refused = ana
        .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
        .await
        .expect(403);
    assert_eq!(refused.code(), "dial_not_permitted");
    assert!(!dialled(&app, &to));

    // A live call that is not hers: no transfer, end, hold or mute.
    let (sid, call_id) = live_call(&app, 900).await;
    let target = number_ending("7712");
    for (path, body) in [
        (
            format!("/api/calls/{call_id}/transfer"),
            json!({"transfer_to": target}),
        ),
        (
            "/calls/transfer".to_owned(),
            json!({"call_sid": sid, "transfer_to": target}),
        ),
        (format!("/api/calls/{call_id}/end"), json!({})),
        (format!("/api/calls/{sid}/hold"), json!({"hold": true})),
        (format!("/api/calls/{sid}/mute"), json!({"muted": true})),
    ] {
        let r = ana.post(&path, body).await.expect(403);
        assert_eq!(r.code(), "call_control_not_permitted", "{path}");
    }
    ana.send(
        reqwest::Method::DELETE,
        &format!("/api/calls/{call_id}"),
        None,
    )
    .await
    .expect(403);
    assert!(!dialled(&app, &target));
    assert_eq!(status_of(&admin, &sid).await["status"], "in-progress");

    // The policy is the admins' to change; once it names her, she may place calls.
    ana.put("/api/telephony/policy", json!({"agents_may_dial": ["ana"]}))
        .await
        .expect(403);
    app.supervisor()
        .put("/api/telephony/policy", json!({"agents_may_dial": ["ana"]}))
        .await
        .expect(403);
    let policy = admin
        .put("/api/telephony/policy", json!({"agents_may_dial": ["ana"]}))
        .await
        .expect(200);
    assert_eq!(policy.body["agents_may_dial"], json!(["ana"]));
    assert_eq!(policy.body["allowed_countries"], json!(["US"]));
    admin
        .put("/api/telephony/policy", json!({"agents_may_dial": ["a#b"]}))
        .await
        .expect(422);
    admin
        .put(
            "/api/telephony/policy",
            json!({"agents_may_dial": ["ana"], "allowed_countries": ["GB"]}),
        )
        .await
        .expect(422);
    let made = ana
        .post(
            "/api/calls/make",
            json!({"to": number_ending("1235"), "message": "Hi"}),
        )
        .await
        .expect(201);
    assert!(made.body["call_sid"].as_str().unwrap().starts_with("CA"));
    // Still not a call she is connected to.
    ana.post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(403);
    admin
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn caller_id_is_always_one_of_the_tenants_own_numbers() {
    let app = spawn_app().await;
    let admin = app.admin();
    let to = number_ending("7713");
    let none = admin
        .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
        .await
        .expect(409);
    assert_eq!(none.code(), "no_number");

    let ours = own_number(&admin).await;
    let other = app.user_in(&new_tenant(), Role::Admin, "admin-9");
    let theirs = own_number(&other).await;
    for from in [
        theirs.as_str(),
        vocelio_local::stack::LOCAL_CALLER_ID,
        "+14155550199",
    ] {
        let r = admin
            .post(
                "/api/calls/make",
                json!({"to": to, "from": from, "message": "Hi"}),
            )
            .await
            .expect(403);
        assert_eq!(r.code(), "caller_id_not_owned", "{from}");
    }
    assert!(!dialled(&app, &to));
    let made = admin
        .post(
            "/api/calls/make",
            json!({"to": to, "from_number": ours, "message": "Hi"}),
        )
        .await
        .expect(201);
    assert_eq!(made.body["from"], ours.as_str());
    // The call lives in the tenant's own Twilio subaccount, never in ours.
    let sid = made.body["call_sid"].as_str().unwrap();
    let account = subaccount_of(&app, &app.tenant);
    assert_eq!(app.twilio.call(sid).unwrap().account_sid, account.sid);
    assert_ne!(account.sid, twilio_sim::ACCOUNT_SID);
    // Nobody reads the subaccount's token through the API.
    let policy = admin.get("/api/telephony/policy").await.expect(200);
    assert!(!policy.body.to_string().contains(&account.auth_token));
    let numbers = admin.get("/api/numbers").await.expect(200);
    assert!(!numbers.body.to_string().contains(&account.auth_token));
}

#[tokio::test]
async fn premium_rate_and_foreign_destinations_never_reach_twilio() {
    let app = crate::helpers::spawn_app_with(&[("DIAL_ALLOWED_COUNTRIES", "US,GB")]).await;
    let admin = app.admin();
    own_number(&admin).await;
    // The platform allows the US and the UK; this tenant narrows that to the US.
    admin
        .put(
            "/api/telephony/policy",
            json!({"allowed_countries": ["us"]}),
        )
        .await
        .expect(200);
    for (to, code) in [
        ("+19005550123", "destination_denied"),
        ("+881612345678", "destination_denied"),
        // +1 is not one country: Jamaica, the Dominican Republic, the Bahamas...
        ("+18765551234", "destination_country_not_allowed"),
        ("+18095551234", "destination_country_not_allowed"),
        ("+12423221234", "destination_country_not_allowed"),
        ("+447400123456", "destination_country_not_allowed"),
        ("+33612345678", "destination_country_not_allowed"),
        // North America's premium exchange, in any area code.
        ("+14159760123", "destination_type_refused"),
    ] {
        let r = admin
            .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
            .await
            .expect(403);
        assert_eq!(r.code(), code, "{to}");
        assert!(!dialled(&app, to), "{to}");
    }
    // A number that is only possible, not valid anywhere, is not dialled either.
    let r = admin
        .post(
            "/api/calls/make",
            json!({"to": "+14150001234", "message": "Hi"}),
        )
        .await
        .expect(422);
    assert_eq!(r.fields(), vec!["to"]);
    // Allowed again, a UK premium-rate, shared-cost or personal number is still refused
    // by its kind.
    let view = admin
        .put(
            "/api/telephony/policy",
            json!({"allowed_countries": ["US", "GB"]}),
        )
        .await
        .expect(200);
    assert_eq!(view.body["allowed_countries"], json!(["US", "GB"]));
    for to in ["+449098790000", "+448712345678", "+447012345678"] {
        let r = admin
            .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
            .await
            .expect(403);
        assert_eq!(r.code(), "destination_type_refused", "{to}");
        assert!(!dialled(&app, to), "{to}");
    }
    // A cold transfer is held to the same rules.
    let (_, call_id) = live_call(&app, 900).await;
    for (to, code) in [
        ("+1 900 555 0177", "destination_denied"),
        ("+1 876 555 0177", "destination_country_not_allowed"),
    ] {
        let r = admin
            .post(
                &format!("/api/calls/{call_id}/transfer"),
                json!({"transfer_to": to}),
            )
            .await
            .expect(403);
        assert_eq!(r.code(), code);
    }
    assert!(!dialled(&app, "+19005550177") && !dialled(&app, "+18765550177"));
    admin
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn quotas_cap_live_calls_and_reserve_the_days_minutes() {
    let app = crate::helpers::spawn_app_with(&[
        ("MAX_CONCURRENT_CALLS", "2"),
        ("CALL_MINUTES_PER_DAY", "2"),
        ("MAX_CALL_SECONDS", "60"),
    ])
    .await;
    let admin = app.admin();
    let (first_sid, first) = live_call(&app, 900).await;
    let (_, second) = live_call(&app, 900).await;
    // Two live calls: a third is refused before anything is spent.
    let to = number_ending("7721");
    let r = admin
        .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
        .await
        .expect(429);
    assert_eq!(r.code(), "concurrent_calls");
    assert!(r.headers.contains_key("retry-after"));
    // Each live call reserved its time limit (60 s) of the day's 120 s.
    let policy = admin.get("/api/telephony/policy").await.expect(200);
    assert_eq!(
        policy.body["usage"]["seconds_today"], 120,
        "{}",
        policy.body
    );
    assert_eq!(policy.body["limits"]["max_call_seconds"], 60);
    // The first ends: what it did not use comes back, but less than a minute is left.
    admin
        .post(&format!("/api/calls/{first}/end"), json!({}))
        .await
        .expect(200);
    let used = eventually(
        Duration::from_secs(20),
        "the first call's minutes",
        || async {
            let p = admin.get("/api/telephony/policy").await.body;
            let s = p["usage"]["seconds_today"].as_u64().unwrap();
            (s < 120).then_some(s)
        },
    )
    .await;
    let first_seconds = app.twilio.call(&first_sid).unwrap().duration.unwrap();
    assert_eq!(used, 60 + first_seconds, "B's reservation + what A used");
    let r = admin
        .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
        .await
        .expect(429);
    assert_eq!(r.code(), "minutes_per_day");
    assert!(!dialled(&app, &to));
    admin
        .post(&format!("/api/calls/{second}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn calls_per_minute_are_counted_per_tenant() {
    let app = crate::helpers::spawn_app_with(&[("CALLS_PER_MINUTE", "1")]).await;
    let admin = app.admin();
    own_number(&admin).await;
    let minute = || time::OffsetDateTime::now_utc().minute();
    for _ in 0..2 {
        let started = minute();
        admin
            .post(
                "/api/calls/make",
                json!({"to": number_ending("7731"), "message": "Hi"}),
            )
            .await
            .expect(201);
        let to = number_ending("7732");
        let r = admin
            .post("/api/calls/make", json!({"to": to, "message": "Hi"}))
            .await;
        if minute() != started {
            // The minute turned between the two: try again in the new one.
            continue;
        }
        assert_eq!(r.status, 429, "{:?}", r.body);
        assert_eq!(r.code(), "calls_per_minute");
        assert!(!dialled(&app, &to));
        // Another tenant is not affected.
        let other = app.user_in(&new_tenant(), Role::Admin, "admin-x");
        own_number(&other).await;
        other
            .post(
                "/api/calls/make",
                json!({"to": number_ending("7733"), "message": "Hi"}),
            )
            .await
            .expect(201);
        return;
    }
    panic!("two minute boundaries in a row");
}

#[tokio::test]
async fn do_not_call_holds_on_every_dialling_path() {
    let app = spawn_app().await;
    let admin = app.admin();
    let sup = app.supervisor();
    own_number(&admin).await;
    let blocked = number_ending("4401");
    let dnc = sup
        .post("/v1/dnc-lists", json!({ "name": "Opt-outs" }))
        .await
        .expect(201);
    let dnc_id = dnc.body["data"]["id"].as_str().unwrap().to_owned();
    sup.post(
        &format!("/v1/dnc-lists/{dnc_id}/entries"),
        json!({ "phones": [blocked] }),
    )
    .await
    .expect(200);
    // A cold transfer of a live call to a listed number: refused, nothing dialled.
    let (sid, call_id) = live_call(&app, 900).await;
    let r = admin
        .post(
            "/calls/transfer",
            json!({"call_sid": sid, "transfer_to": blocked}),
        )
        .await
        .expect(403);
    assert_eq!(r.code(), "do_not_call");
    assert!(!dialled(&app, &blocked));
    assert_eq!(status_of(&admin, &sid).await["status"], "in-progress");

    // A contact marked do-not-call is not dialled, by number or by contact id.
    let marked = number_ending("4402");
    let contact = sup
        .post(
            "/v1/contacts",
            json!({"firstName": "Dana", "lastName": "Quiet", "phone": marked, "status": "doNotCall"}),
        )
        .await;
    let contact = if contact.status == 201 {
        contact
    } else {
        // The contact API may take the status only as an update.
        let created = sup
            .post(
                "/v1/contacts",
                json!({"firstName": "Dana", "lastName": "Quiet", "phone": marked}),
            )
            .await
            .expect(201);
        let id = created.body["data"]["id"].as_str().unwrap().to_owned();
        sup.send(
            reqwest::Method::PATCH,
            &format!("/v1/contacts/{id}"),
            Some(json!({"status": "doNotCall"})),
        )
        .await
        .expect(200)
    };
    let contact_id = contact.body["data"]["id"].as_str().unwrap().to_owned();
    let r = admin
        .post("/api/calls/make", json!({"to": marked, "message": "Hi"}))
        .await
        .expect(403);
    assert_eq!(r.code(), "do_not_call");
    let elsewhere = number_ending("4403");
    let r = admin
        .post(
            "/api/calls/make",
            json!({"to": elsewhere, "contact_id": contact_id, "message": "Hi"}),
        )
        .await
        .expect(403);
    assert_eq!(r.code(), "do_not_call");
    assert!(!dialled(&app, &marked) && !dialled(&app, &elsewhere));
    admin
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

/// A web server standing for a tenant's own AI-agent webhook: whatever TwiML it is given.
async fn twiml_server(document: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(move || {
        let document = document.clone();
        async move { ([("content-type", "text/xml")], document) }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn a_tenants_twiml_cannot_point_signed_callbacks_at_another_tenants_call() {
    let victim = spawn_app().await;
    let (victim_sid, victim_call) = live_call(&victim, 900).await;
    let events_before = events_of(&victim, &victim.tenant).await.len();

    // The attacker's flow answers with TwiML whose dialled leg reports, signed by Twilio,
    // to our status webhook naming the victim's tenant and call (as caller and as an agent).
    let attacker = spawn_app().await;
    let hooks = &stand().hooks_base;
    let steer = format!(
        "{hooks}/twilio/status?tenant={}&amp;call_id={victim_call}",
        victim.tenant
    );
    let steer_agent = format!(
        "{hooks}/twilio/status?tenant={}&amp;call_id={victim_call}&amp;leg=agent&amp;transfer_id=transfer_x&amp;agent_id=ana",
        victim.tenant
    );
    let accomplice = number_ending("6601");
    let document = format!(
        "<Response><Dial><Number statusCallbackEvent=\"initiated ringing answered completed\" statusCallback=\"{steer}\">{accomplice}</Number></Dial>\
         <Dial><Number statusCallbackEvent=\"answered completed\" statusCallback=\"{steer_agent}\">{accomplice}</Number></Dial></Response>"
    );
    let evil = twiml_server(document).await;
    let number = own_number(&attacker.admin()).await;
    attacker
        .admin()
        .post(
            "/admin/register-flow",
            json!({"flow_id": "evil", "phone_numbers": [number], "webhook_url": evil}),
        )
        .await
        .expect(201);
    attacker
        .admin()
        .post(
            "/api/calls/make",
            json!({"to": number_ending("6602"), "flow_id": "evil"}),
        )
        .await
        .expect(201);
    // The accomplice's legs ring, talk, hang up: their callbacks reach our webhook...
    let attacker_account = subaccount_of(&attacker, &attacker.tenant).sid;
    let refused = eventually(Duration::from_secs(30), "the steered callbacks", || async {
        let hits: Vec<_> = attacker
            .twilio
            .callbacks()
            .into_iter()
            .filter(|c| c.url.contains(&victim_call) && c.account_sid == attacker_account)
            .collect();
        let done = hits.iter().filter(|c| c.response_status.is_some()).count();
        (done >= 2
            && hits.iter().any(|c| {
                c.params
                    .iter()
                    .any(|(k, v)| k == "CallStatus" && v == "completed")
            }))
        .then_some(hits)
    })
    .await;
    // ...signed by Twilio with the attacker's account, and refused.
    for hit in &refused {
        if let Some(status) = hit.response_status {
            assert_eq!(status, 403, "{}", hit.url);
        }
    }
    // The victim's call is untouched and its log has nothing new about it.
    let after = status_of(&victim.admin(), &victim_sid).await;
    assert_eq!(after["status"], "in-progress");
    assert_eq!(after["call_sid"], victim_sid.as_str());
    let events: Vec<Value> = events_of(&victim, &victim.tenant).await;
    assert!(
        !events[events_before..]
            .iter()
            .any(|e| e["data"]["call_id"] == victim_call.as_str()),
        "{:?}",
        &events[events_before..]
    );
    victim
        .admin()
        .post(&format!("/api/calls/{victim_call}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn two_tenants_with_an_agent_called_ana_ring_only_their_own() {
    let first = spawn_app().await;
    let second = spawn_app().await;
    let mut softphones = Vec::new();
    for app in [&first, &second] {
        let admin = app.admin();
        admin.create_department("Sales", "+1555-SALES-01").await;
        app.supervisor()
            .available_agent("ana", "Sales", &[], &["en"])
            .await;
        softphones.push(softphone_of(app, "ana").await);
    }
    assert_ne!(softphones[0], softphones[1]);
    assert!(!softphones[0].contains("ana"));

    let (_, call_id) = live_call(&first, 900).await;
    let raised = first
        .admin()
        .post(
            &format!("/api/calls/{call_id}/transfer"),
            json!({"transfer_to": "Sales", "context": "Order 1138", "mode": "warm"}),
        )
        .await
        .expect(201);
    let transfer_id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    let leg = eventually(Duration::from_secs(20), "ana's softphone rings", || async {
        first.twilio.calls().into_iter().find(|c| {
            c.verbs.iter().any(|v| v.contains(&transfer_id)) && c.to.starts_with("client:")
        })
    })
    .await;
    assert_eq!(leg.to, softphones[0]);
    assert_eq!(leg.account_sid, subaccount_of(&first, &first.tenant).sid);
    assert!(!dialled(&second, &softphones[1]));
    first
        .admin()
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn numbers_are_searched_bought_mapped_and_released_by_their_tenant() {
    let app = spawn_app().await;
    let admin = app.admin();
    // The Phone Numbers screen's search.
    let found = admin
        .get("/api/numbers/search?country=US&area_code=512&contains=55")
        .await
        .expect(200);
    let list = found.body["available_numbers"].as_array().unwrap();
    assert!(!list.is_empty());
    for n in list {
        let e164 = n["phone_number"].as_str().unwrap();
        assert!(e164.starts_with("+1512") && e164[2..].contains("55"), "{n}");
        assert_eq!(n["iso_country"], "US");
        assert!(n["capabilities"]["voice"].is_boolean());
    }
    let toll_free = admin
        .get("/api/numbers/search?country=US&type=toll_free")
        .await
        .expect(200);
    assert!(
        toll_free.body["available_numbers"][0]["phone_number"]
            .as_str()
            .unwrap()
            .starts_with("+18")
    );
    for bad in [
        "country=USA",
        "area_code=41",
        "contains=x",
        "type=premium",
        "limit=abc",
    ] {
        admin
            .get(&format!("/api/numbers/search?{bad}"))
            .await
            .expect(422);
    }
    app.agent("ana")
        .get("/api/numbers/search?country=US")
        .await
        .expect(403);
    let wanted = list[0]["phone_number"].as_str().unwrap().to_owned();
    app.supervisor()
        .post("/api/numbers/buy", json!({"phone_number": wanted}))
        .await
        .expect(403);
    let bought = admin
        .post(
            "/api/numbers/buy",
            json!({"phone_number": wanted, "friendly_name": "Local Austin, TX US",
                   "voice_url": "https://attacker.example/voice", "sms_url": "https://attacker.example/sms"}),
        )
        .await
        .expect(201);
    let sid = bought.body["sid"].as_str().unwrap().to_owned();
    // Bought in the tenant's subaccount, pointed at our webhooks (not at the URLs sent).
    let at_twilio = app
        .twilio
        .numbers()
        .into_iter()
        .find(|n| n.sid == sid)
        .unwrap();
    assert_eq!(at_twilio.account_sid, subaccount_of(&app, &app.tenant).sid);
    let voice_url = at_twilio.voice_url.clone().unwrap();
    assert!(voice_url.ends_with("/twilio/voice"), "{voice_url}");
    assert!(!voice_url.contains("attacker"));
    // Buying it again answers what is owned; it is sold out for others.
    let again = admin
        .post("/api/numbers/buy", json!({"phone_number": wanted}))
        .await
        .expect(200);
    assert_eq!(again.body["sid"], sid.as_str());
    let gone = admin
        .get("/api/numbers/search?country=US&area_code=512&contains=55")
        .await
        .expect(200);
    assert!(
        !gone.body["available_numbers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["phone_number"] == wanted.as_str())
    );
    admin
        .post("/api/numbers/buy", json!({"phone_number": "call me"}))
        .await
        .expect(422);
    // A number bought and never mapped is released at once.
    let spare = list[1]["phone_number"].as_str().unwrap().to_owned();
    let spare_sid = admin
        .post("/api/numbers/buy", json!({"phone_number": spare}))
        .await
        .expect(201)
        .body["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .delete(&format!("/api/numbers/{spare_sid}/release"))
        .await
        .expect(200);
    let unavailable = admin
        .post("/api/numbers/buy", json!({"phone_number": "+15125550002"}))
        .await
        .expect(422);
    assert_eq!(unavailable.code(), "twilio_rejected");

    // Listed on both paths the app reads.
    for path in ["/api/numbers", "/numbers"] {
        let listed = app.agent("ana").get(path).await.expect(200);
        let row = listed.body["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["sid"] == sid.as_str())
            .cloned()
            .unwrap();
        assert_eq!(row["phone_number"], wanted.as_str());
        assert_eq!(row["friendly_name"], "Local Austin, TX US");
        assert!(
            row["capabilities"]
                .as_array()
                .unwrap()
                .contains(&json!("voice"))
        );
    }
    // A mapped number cannot be released; unmapped it can, once.
    register_flow(&app, "support", &wanted, 60).await;
    let busy = admin
        .delete(&format!("/api/numbers/{sid}"))
        .await
        .expect(409);
    assert_eq!(busy.code(), "number_in_use");
    admin
        .post("/admin/unregister-flow", json!({"phone_number": wanted}))
        .await
        .expect(200);
    app.supervisor()
        .delete(&format!("/api/numbers/{sid}"))
        .await
        .expect(403);
    admin
        .delete(&format!("/api/numbers/{sid}"))
        .await
        .expect(200);
    admin
        .delete(&format!("/api/numbers/{sid}"))
        .await
        .expect(404);
    assert!(!app.twilio.numbers().iter().any(|n| n.sid == sid));
    let listed = admin.get("/api/numbers").await.expect(200);
    assert!(listed.body["numbers"].as_array().unwrap().is_empty());
    // Not owned any more: it cannot be mapped or called from.
    let r = admin
        .post(
            "/admin/register-flow",
            json!({"flow_id": "support", "phone_numbers": [wanted]}),
        )
        .await
        .expect(403);
    assert_eq!(r.code(), "number_not_owned");
}

#[tokio::test]
async fn an_agent_answering_as_the_caller_joins_is_connected_every_time() {
    let app = spawn_app().await;
    let admin = app.admin();
    admin.create_department("Care", "+1555-CARES-01").await;
    app.supervisor()
        .available_agent("ana", "Care", &[], &["en"])
        .await;
    let number = own_number(&admin).await;
    register_flow(&app, "race", &number, 900).await;
    for round in 0..6 {
        let made = admin
            .post(
                "/api/calls/make",
                json!({"to": number_ending("1300"), "flow_id": "race"}),
            )
            .await
            .expect(201);
        let sid = made.body["call_sid"].as_str().unwrap().to_owned();
        let call_id = made.body["call_id"].as_str().unwrap().to_owned();
        wait_status(&admin, &sid, "in-progress").await;
        let transfer_id = raise(&admin, &call_id, "Care").await;
        wait_transfer(&admin, &transfer_id, "connected").await;
        // Ana hangs up: the transfer completes and she is free for the next round.
        let leg = agent_leg(&app, &transfer_id).await;
        assert!(app.twilio.hangup(&leg.sid), "round {round}: {leg:?}");
        let waited = Instant::now();
        loop {
            let t = admin
                .get(&format!("/api/transfers/{transfer_id}"))
                .await
                .body;
            if t["transfer"]["status"] == "completed" {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "round {round}: {t} {:?}",
                app.twilio.call(&leg.sid)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let agent = admin.get("/api/agents/ana").await.expect(200);
        assert_ne!(agent.body["agent"]["status"], "offline", "round {round}");
        admin
            .post(&format!("/api/calls/{call_id}/end"), json!({}))
            .await;
        eventually(Duration::from_secs(10), "ana available", || async {
            let a = admin.get("/api/agents/ana").await.body;
            (a["agent"]["status"] == "available").then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn an_unanswered_agent_leg_offers_the_next_agent_within_seconds() {
    let app = spawn_app().await;
    let admin = app.admin();
    admin.create_department("Help", "+1555-HELPS-01").await;
    let sup = app.supervisor();
    sup.available_agent("away", "Help", &[], &["en"]).await;
    let away_phone = softphone_of(&app, "away").await;
    // Her softphone is not registered: Twilio rings it until it gives up (no-answer).
    app.twilio.set_no_answer(&away_phone);
    let (_, call_id) = live_call(&app, 900).await;
    let raised = admin
        .post(
            &format!("/api/calls/{call_id}/transfer"),
            json!({"transfer_to": "Help"}),
        )
        .await
        .expect(201);
    assert_eq!(raised.body["agent_id"], "away");
    let transfer_id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    // A second agent comes to her desk while the first offer rings.
    sup.available_agent("here", "Help", &[], &["en"]).await;
    let ended = eventually(Duration::from_secs(20), "the unanswered leg", || async {
        app.twilio
            .calls()
            .into_iter()
            .find(|c| c.to == away_phone && c.status == "no-answer")
    })
    .await;
    let no_answer_seen = Instant::now();
    let offered = eventually(Duration::from_secs(20), "the next offer", || async {
        let t = admin
            .get(&format!("/api/transfers/{transfer_id}"))
            .await
            .body;
        (t["transfer"]["agent_id"] == "here").then_some(t)
    })
    .await;
    let waited = no_answer_seen.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "{waited:?} after {ended:?}"
    );
    assert!(
        offered["transfer"]["declined_by"]
            .as_array()
            .unwrap()
            .contains(&json!("away"))
    );
    // She is not at her desk: offline, not offered again.
    let agent = admin.get("/api/agents/away").await.expect(200);
    assert_eq!(agent.body["agent"]["status"], "offline");
    admin
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_four_thousand_character_context_still_connects_the_agent() {
    let app = spawn_app().await;
    let admin = app.admin();
    let billing = admin.create_department("Billing", "+1555-BILLS-01").await;
    app.supervisor()
        .available_agent("ana", "Billing", &[], &["en"])
        .await;
    let (_, call_id) = live_call(&app, 900).await;
    let context = "The caller disputes an invoice & wants <details>. ".repeat(80);
    let context: String = context.chars().take(4000).collect();
    let raised = admin
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": id_of(&billing), "transfer_type": "warm",
                   "transfer_reason": "billing", "urgency_level": "high", "context_summary": context}),
        )
        .await
        .expect(201);
    let transfer_id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    wait_transfer(&admin, &transfer_id, "connected").await;
    let leg = agent_leg(&app, &transfer_id).await;
    // The agent heard a bounded summary, escaped like any text.
    let whisper = &leg.verbs[0];
    assert!(whisper.starts_with("Say:") && whisper.contains("disputes an invoice"));
    assert!(whisper.chars().count() < 600, "{}", whisper.chars().count());
    assert!(whisper.contains("<details>"));
    admin
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_twilio_failure_on_the_first_dial_of_an_agent_is_retried() {
    let app = spawn_app().await;
    let admin = app.admin();
    admin.create_department("Retry", "+1555-RETRY-01").await;
    app.supervisor()
        .available_agent("ana", "Retry", &[], &["en"])
        .await;
    let (_, call_id) = live_call(&app, 900).await;
    let account = subaccount_of(&app, &app.tenant);
    // The next two requests in this tenant's account fail as Twilio fails on a bad day.
    app.twilio
        .fail_next_for(&account.sid, 503, 20503, "Service unavailable", 2);
    let transfer_id = raise(&admin, &call_id, "Retry").await;
    wait_transfer(&admin, &transfer_id, "connected").await;
    // One agent leg, not two.
    let legs = app
        .twilio
        .calls()
        .into_iter()
        .filter(|c| c.verbs.iter().any(|v| v.contains(&transfer_id)) && c.to.starts_with("client:"))
        .count();
    assert_eq!(legs, 1);
    admin
        .post(&format!("/api/calls/{call_id}/end"), json!({}))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_manager_cannot_borrow_a_call_sid_to_act_on_someone_elses_call() {
    let victim = spawn_app().await;
    let (victim_sid, victim_call) = live_call(&victim, 900).await;
    let app = spawn_app().await;
    let admin = app.admin();
    // Another tenant's SID cannot be written onto a call of ours...
    let r = admin
        .post(
            "/api/calls",
            json!({"caller_number": "+14155550142", "call_sid": victim_sid}),
        )
        .await
        .expect(409);
    assert_eq!(r.code(), "call_sid_taken");
    let own = admin.start_call("+14155550143").await;
    let r = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{own}"),
            Some(json!({"call_sid": victim_sid})),
        )
        .await
        .expect(409);
    assert_eq!(r.code(), "call_sid_taken");
    // ...and a SID we never placed or answered is never acted on at Twilio.
    let made_up = "CA0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
    admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{own}"),
            Some(json!({"call_sid": made_up})),
        )
        .await
        .expect(200);
    let r = admin
        .post(&format!("/api/calls/{own}/end"), json!({}))
        .await
        .expect(409);
    assert_eq!(r.code(), "call_sid_not_owned");
    // A call our telephony carries keeps Twilio's SID.
    let (_, carried) = live_call(&app, 900).await;
    let r = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{carried}"),
            Some(json!({"call_sid": made_up})),
        )
        .await
        .expect(409);
    assert_eq!(r.code(), "call_sid_managed");
    // Nor is it ended by a PATCH of its record while it is live at Twilio.
    let r = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{carried}"),
            Some(json!({"status": "completed"})),
        )
        .await
        .expect(409);
    assert_eq!(r.code(), "call_carried");
    assert_eq!(
        status_of(&victim.admin(), &victim_sid).await["status"],
        "in-progress"
    );
    for (app, call) in [(&victim, &victim_call), (&app, &carried)] {
        app.admin()
            .post(&format!("/api/calls/{call}/end"), json!({}))
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn an_agents_lost_reports_are_recovered_from_twilio() {
    let app = spawn_app().await;
    let admin = app.admin();
    admin.create_department("Lost", "+1555-LOSTS-01").await;
    app.supervisor()
        .available_agent("ana", "Lost", &[], &["en"])
        .await;
    let softphone = softphone_of(&app, "ana").await;
    // Every status report of Ana's legs is lost (our webhook was down; Twilio never retries).
    app.twilio.lose_status_callbacks(&softphone);
    let (_, call_id) = live_call(&app, 900).await;
    let transfer_id = raise(&admin, &call_id, "Lost").await;
    // She answered: the reconciler reads it from Twilio and the offer is accepted.
    wait_transfer(&admin, &transfer_id, "connected").await;
    let leg = agent_leg(&app, &transfer_id).await;
    assert!(
        !app.twilio.callbacks().iter().any(|c| c.kind == "status"
            && c.params
                .iter()
                .any(|(k, v)| k == "CallSid" && *v == leg.sid)),
        "no report of her leg ever arrived"
    );
    // She hangs up: completed from Twilio's state, and she is free again.
    assert!(app.twilio.hangup(&leg.sid));
    wait_transfer(&admin, &transfer_id, "completed").await;
    eventually(Duration::from_secs(10), "ana available", || async {
        let a = admin.get("/api/agents/ana").await.body;
        (a["agent"]["status"] == "available").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_tenant_owns_at_most_its_share_of_numbers() {
    let app = crate::helpers::spawn_app_with(&[("MAX_NUMBERS_PER_TENANT", "1")]).await;
    let admin = app.admin();
    own_number(&admin).await;
    let found = admin
        .get("/api/numbers/search?country=US&area_code=617")
        .await
        .expect(200);
    let next = found.body["available_numbers"][0]["phone_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin
        .post("/api/numbers/buy", json!({"phone_number": next}))
        .await
        .expect(403);
    assert_eq!(r.code(), "number_limit");
    assert!(!app.twilio.numbers().iter().any(|n| n.phone_number == next));
}
