//! Phone numbers: searching the deterministic pool, buying, updating and releasing
//! IncomingPhoneNumbers, caller IDs (21210), and inbound calls to a bought number.

use axum::http::Method;
use serde_json::Value;
use twilio_sim::{ACCOUNT_SID, SimOptions};

use crate::common::*;

fn numbers_of(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .iter()
        .map(|n| n["phone_number"].as_str().expect("phone_number").to_owned())
        .collect()
}

fn available(body: &Value) -> Vec<String> {
    numbers_of(body, "available_phone_numbers")
}

#[tokio::test]
async fn searches_are_deterministic_and_skip_numbers_somebody_holds() {
    let sim = simulator(options()).await;
    let search = |path: &str| format!("{}/AvailablePhoneNumbers/{path}", api(&sim));

    let (status, local) = get(&search("US/Local.json?AreaCode=415&PageSize=3")).await;
    assert_eq!(status, 200, "{local}");
    // +14155550100 is one of the main account's default caller IDs: nobody can buy it.
    assert_eq!(
        available(&local),
        ["+14155550101", "+14155550102", "+14155550103"]
    );
    let first = &local["available_phone_numbers"][0];
    assert_eq!(first["friendly_name"], "(415) 555-0101");
    assert_eq!(first["locality"], "San Francisco");
    assert_eq!(first["region"], "CA");
    assert_eq!(first["postal_code"], "94105");
    assert_eq!(first["iso_country"], "US");
    assert_eq!(first["address_requirements"], "none");
    assert_eq!(first["beta"], false);
    assert!(first["latitude"].is_number() && first["longitude"].is_number());
    assert!(first["lata"].is_string() && first["rate_center"].is_string());
    assert_eq!(
        first["capabilities"],
        serde_json::json!({"voice": true, "SMS": true, "MMS": true, "fax": false})
    );
    assert_eq!(local["page_size"], 3);
    assert_eq!(
        local["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/AvailablePhoneNumbers/US/Local.json")
    );

    // Another simulator answers the same.
    let other = simulator(options()).await;
    let (_, again) = get(&format!(
        "{}/AvailablePhoneNumbers/US/Local.json?AreaCode=415&PageSize=3",
        api(&other)
    ))
    .await;
    assert_eq!(available(&again), available(&local));

    // Contains: digits anywhere, `*` for one digit, letters as on a keypad.
    let (_, contains) = get(&search("US/Local.json?AreaCode=212&Contains=0150")).await;
    assert_eq!(available(&contains), ["+12125550150"]);
    let (_, wildcard) = get(&search("US/Local.json?AreaCode=212&Contains=555014*")).await;
    assert_eq!(available(&wildcard).len(), 10);
    assert!(
        available(&wildcard)
            .iter()
            .all(|n| n.starts_with("+121255501"))
    );
    let (_, none) = get(&search("US/Local.json?AreaCode=212&Contains=9999")).await;
    assert_eq!(available(&none), Vec::<String>::new());
    let (_, default) = get(&search("US/Local.json")).await;
    assert_eq!(available(&default).len(), 50);
    assert_eq!(available(&default)[0], "+14155550101");

    // Buying a number takes it out of every search.
    let (status, _) = post(
        &format!("{}/IncomingPhoneNumbers.json", api(&sim)),
        &[("PhoneNumber", "+14155550101")],
    )
    .await;
    assert_eq!(status, 201);
    let (_, after) = get(&search("US/Local.json?AreaCode=415&PageSize=2")).await;
    assert_eq!(available(&after), ["+14155550102", "+14155550103"]);
    let (sub, sub_token) = subaccount(&sim, "tenant-a").await;
    let (_, seen_by_sub) = get_as(
        (&sub, &sub_token),
        &format!(
            "{}/AvailablePhoneNumbers/US/Local.json?AreaCode=415&PageSize=1",
            api_of(&sim, &sub)
        ),
    )
    .await;
    assert_eq!(available(&seen_by_sub), ["+14155550102"]);

    // Toll-free and other countries.
    let (_, toll_free) = get(&search("US/TollFree.json?AreaCode=888&PageSize=2")).await;
    assert_eq!(available(&toll_free), ["+18885550100", "+18885550101"]);
    let toll_free_first = &toll_free["available_phone_numbers"][0];
    assert_eq!(toll_free_first["capabilities"]["MMS"], false);
    assert!(toll_free_first["locality"].is_null());
    let (_, any_toll_free) = get(&search("US/TollFree.json?PageSize=1")).await;
    assert_eq!(available(&any_toll_free), ["+18005550100"]);
    let (_, london) = get(&search("GB/Local.json?PageSize=1")).await;
    assert_eq!(available(&london), ["+442079460100"]);
    assert_eq!(london["available_phone_numbers"][0]["locality"], "London");
    let (_, gb_free) = get(&search("GB/TollFree.json?PageSize=1")).await;
    assert_eq!(available(&gb_free), ["+448081570100"]);
    let (_, toronto) = get(&search("CA/Local.json?PageSize=1")).await;
    assert_eq!(available(&toronto), ["+14165550100"]);
    assert_eq!(toronto["available_phone_numbers"][0]["iso_country"], "CA");
    let (_, countries) = get(&format!("{}/AvailablePhoneNumbers.json", api(&sim))).await;
    assert_eq!(countries["countries"].as_array().map(Vec::len), Some(3));

    assert_error(&get(&search("FR/Local.json")).await, 404, 20404);
    assert_error(&get(&search("CA/TollFree.json")).await, 404, 20404);
    assert_error(&get(&search("US/Mobile.json")).await, 404, 20404);
    assert_error(
        &get(&search("US/Local.json?AreaCode=911")).await,
        400,
        21451,
    );
    assert_error(
        &get(&search("US/TollFree.json?AreaCode=415")).await,
        400,
        21451,
    );
    assert_error(&get(&search("US/Local.json?Contains=1")).await, 400, 20001);
    assert_error(&get(&search("US/Local.json?PageSize=0")).await, 400, 20001);
    assert_error(
        &form(Method::POST, &search("US/Local.json"), &[]).await,
        405,
        20004,
    );
}

#[tokio::test]
async fn numbers_are_bought_listed_updated_and_released() {
    let sim = simulator(options()).await;
    let (sub, sub_token) = subaccount(&sim, "tenant-a").await;
    let auth = (sub.as_str(), sub_token.as_str());
    let numbers = format!("{}/IncomingPhoneNumbers.json", api_of(&sim, &sub));

    let (status, bought) = post_as(
        auth,
        &numbers,
        &[
            ("PhoneNumber", "+14155550142"),
            ("FriendlyName", "Support line"),
            ("VoiceUrl", "https://example.com/voice"),
            ("VoiceMethod", "GET"),
            ("StatusCallback", "https://example.com/status"),
            ("SmsUrl", "https://example.com/sms"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{bought}");
    let pn = bought["sid"].as_str().expect("sid").to_owned();
    assert!(pn.starts_with("PN") && pn.len() == 34, "{pn}");
    assert_eq!(bought["account_sid"], sub.as_str());
    assert_eq!(bought["phone_number"], "+14155550142");
    assert_eq!(bought["friendly_name"], "Support line");
    assert_eq!(bought["voice_url"], "https://example.com/voice");
    assert_eq!(bought["voice_method"], "GET");
    assert_eq!(bought["status_callback"], "https://example.com/status");
    assert_eq!(bought["status_callback_method"], "POST");
    assert_eq!(bought["sms_url"], "https://example.com/sms");
    assert_eq!(bought["status"], "in-use");
    assert_eq!(bought["api_version"], "2010-04-01");
    assert_eq!(
        bought["capabilities"],
        serde_json::json!({"voice": true, "sms": true, "mms": true, "fax": false})
    );
    assert_eq!(
        bought["uri"],
        format!("/2010-04-01/Accounts/{sub}/IncomingPhoneNumbers/{pn}.json")
    );
    assert!(bought["date_created"].is_string());

    // By area code: the first free number there.
    let (status, by_area) = post_as(auth, &numbers, &[("AreaCode", "212")]).await;
    assert_eq!(status, 201, "{by_area}");
    assert_eq!(by_area["phone_number"], "+12125550100");
    assert_eq!(by_area["friendly_name"], "(212) 555-0100");
    assert!(by_area["voice_url"].is_null());

    // Twilio's refusals.
    let refused = |pairs: &'static [(&'static str, &'static str)]| {
        let numbers = numbers.clone();
        async move { post_as(auth, &numbers, pairs).await }
    };
    let taken = refused(&[("PhoneNumber", "+14155550142")]).await;
    assert_error(&taken, 400, 21422);
    assert_eq!(
        taken.1["message"],
        "PhoneNumber +14155550142 is not available"
    );
    // The main account's caller ID, and a number outside the pool.
    assert_error(
        &refused(&[("PhoneNumber", "+14155550100")]).await,
        400,
        21422,
    );
    assert_error(
        &refused(&[("PhoneNumber", "+14155551234")]).await,
        400,
        21422,
    );
    assert_error(&refused(&[("PhoneNumber", "4155550143")]).await, 400, 21421);
    assert_error(&refused(&[("AreaCode", "099")]).await, 400, 21451);
    assert_error(&refused(&[("FriendlyName", "no number")]).await, 400, 20001);
    assert_error(
        &refused(&[("PhoneNumber", "+14155550143"), ("VoiceUrl", "notaurl")]).await,
        400,
        21502,
    );
    assert_error(
        &refused(&[("PhoneNumber", "+14155550143"), ("VoiceMethod", "PUT")]).await,
        400,
        20001,
    );
    // The main account bought +14155550143? No: every refused buy left it free.
    assert_eq!(sim.numbers().len(), 2);

    // Lists hold the account's numbers only.
    let (status, list) = get_as(auth, &numbers).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        numbers_of(&list, "incoming_phone_numbers"),
        ["+14155550142", "+12125550100"]
    );
    let (_, filtered) = get_as(auth, &format!("{numbers}?PhoneNumber=%2B14155550142")).await;
    assert_eq!(
        numbers_of(&filtered, "incoming_phone_numbers"),
        ["+14155550142"]
    );
    let (_, partial) = get_as(auth, &format!("{numbers}?PhoneNumber=212555")).await;
    assert_eq!(
        numbers_of(&partial, "incoming_phone_numbers"),
        ["+12125550100"]
    );
    let (_, named) = get_as(auth, &format!("{numbers}?FriendlyName=Support%20line")).await;
    assert_eq!(
        numbers_of(&named, "incoming_phone_numbers"),
        ["+14155550142"]
    );
    let (_, main_list) = get(&format!("{}/IncomingPhoneNumbers.json", api(&sim))).await;
    assert_eq!(
        numbers_of(&main_list, "incoming_phone_numbers"),
        Vec::<String>::new()
    );

    // Fetch and update; another account's path does not find it.
    let number_url = format!("{}/IncomingPhoneNumbers/{pn}.json", api_of(&sim, &sub));
    assert_eq!(get_as(auth, &number_url).await.1["sid"], pn.as_str());
    assert_eq!(get(&number_url).await.0, 200, "the parent may");
    assert_error(
        &get(&format!("{}/IncomingPhoneNumbers/{pn}.json", api(&sim))).await,
        404,
        20404,
    );
    let (status, updated) = post_as(
        auth,
        &number_url,
        &[
            ("VoiceUrl", "https://example.com/voice-2"),
            ("VoiceMethod", "POST"),
            ("SmsUrl", ""),
            ("FriendlyName", "Sales line"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["voice_url"], "https://example.com/voice-2");
    assert_eq!(updated["voice_method"], "POST");
    assert!(updated["sms_url"].is_null(), "an empty value clears it");
    assert_eq!(updated["status_callback"], "https://example.com/status");
    assert_eq!(updated["friendly_name"], "Sales line");
    assert_error(
        &post_as(auth, &number_url, &[("StatusCallback", "ftp://x/y")]).await,
        400,
        21502,
    );
    let snapshot = sim
        .numbers()
        .into_iter()
        .find(|n| n.sid == pn)
        .expect("the number");
    assert_eq!(
        snapshot.voice_url.as_deref(),
        Some("https://example.com/voice-2")
    );
    assert_eq!(snapshot.account_sid, sub);
    assert_eq!(
        sim.account(&sub).map(|a| a.numbers),
        Some(vec!["+14155550142".to_owned(), "+12125550100".to_owned()])
    );
    let over_http = sim_get(&sim, "/__sim/numbers").await;
    assert_eq!(over_http[0]["sid"], pn.as_str());

    // Moving a number needs the main account's credentials.
    let by_area_url = format!(
        "{}/IncomingPhoneNumbers/{}.json",
        api_of(&sim, &sub),
        by_area["sid"].as_str().expect("sid")
    );
    assert_error(
        &post_as(auth, &by_area_url, &[("AccountSid", ACCOUNT_SID)]).await,
        401,
        20003,
    );
    let (status, moved) = post(&by_area_url, &[("AccountSid", ACCOUNT_SID)]).await;
    assert_eq!(
        (status, moved["account_sid"].as_str()),
        (200, Some(ACCOUNT_SID))
    );

    // Released: gone, and back in the pool.
    let (status, _) = form_as(auth, Method::DELETE, &number_url, &[]).await;
    assert_eq!(status, 204);
    assert_error(&get_as(auth, &number_url).await, 404, 20404);
    let (_, search) = get(&format!(
        "{}/AvailablePhoneNumbers/US/Local.json?Contains=4155550142",
        api(&sim)
    ))
    .await;
    assert_eq!(available(&search), ["+14155550142"]);
    assert!(sim.account(&sub).is_some_and(|a| a.numbers.is_empty()));

    // Closing an account releases its numbers.
    let (status, _) = post_as(auth, &numbers, &[("PhoneNumber", "+14155550144")]).await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &format!("{}.json", api_of(&sim, &sub)),
        &[("Status", "closed")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        sim.numbers()
            .iter()
            .all(|n| n.phone_number != "+14155550144")
    );
}

#[tokio::test]
async fn calls_come_only_from_numbers_the_account_holds() {
    let sim = simulator(options()).await;
    let (sub, sub_token) = subaccount(&sim, "tenant-a").await;
    let auth = (sub.as_str(), sub_token.as_str());
    let twiml = "<Response><Say>Hi</Say></Response>";
    let main_calls = format!("{}/Calls.json", api(&sim));
    let sub_calls = format!("{}/Calls.json", api_of(&sim, &sub));
    let call = |from: &'static str| [("To", "+14155550123"), ("From", from), ("Twiml", twiml)];

    // The main account's default caller IDs.
    for from in twilio_sim::DEFAULT_CALLER_IDS {
        assert_eq!(post(&main_calls, &call(from)).await.0, 201, "{from}");
    }
    let refused = post(&main_calls, &call("+14155550199")).await;
    assert_error(&refused, 400, 21210);
    assert_eq!(
        refused.1["message"],
        "The source phone number provided, +14155550199, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio."
    );
    // A subaccount cannot use its parent's numbers, until it buys its own.
    assert_error(
        &post_as(auth, &sub_calls, &call("+15005550006")).await,
        400,
        21210,
    );
    assert_error(
        &post_as(auth, &sub_calls, &call("+14155550150")).await,
        400,
        21210,
    );
    let (status, _) = post_as(
        auth,
        &format!("{}/IncomingPhoneNumbers.json", api_of(&sim, &sub)),
        &[("PhoneNumber", "+14155550150")],
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        post_as(auth, &sub_calls, &call("+14155550150")).await.0,
        201
    );
    assert_error(&post(&main_calls, &call("+14155550150")).await, 400, 21210);
    // A client caller is not a number; verified caller IDs can be added.
    let (status, _) = post_as(
        auth,
        &sub_calls,
        &[
            ("To", "client:agent_1"),
            ("From", "client:ivr"),
            ("Twiml", twiml),
        ],
    )
    .await;
    assert_eq!(status, 201);
    assert!(sim.add_caller_id(&sub, "+14155550199"));
    assert!(!sim.add_caller_id("AC0123456789abcdef0123456789abcdef", "+14155550199"));
    assert_eq!(
        post_as(auth, &sub_calls, &call("+14155550199")).await.0,
        201
    );
    // The Participants API applies the same rule.
    assert_error(
        &post_as(
            auth,
            &format!(
                "{}/Conferences/room-9/Participants.json",
                api_of(&sim, &sub)
            ),
            &[("To", "+14155550123"), ("From", "+15005550006")],
        )
        .await,
        400,
        21210,
    );
    assert!(sim.conferences().is_empty());
}

#[tokio::test]
async fn an_inbound_call_to_a_bought_number_runs_for_its_account() {
    let sim = simulator(SimOptions {
        talk_seconds: 10_000.0,
        ..options()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.serve(
        "/tenant-voice",
        "<Response><Say>Welcome to tenant A</Say><Dial><Client>agent_1</Client></Dial></Response>",
    );
    receiver.serve(
        "/main-voice",
        "<Response><Pause length=\"600\"/></Response>",
    );
    let (sub, sub_token) = subaccount(&sim, "tenant-a").await;
    let (status, number) = post_as(
        (&sub, &sub_token),
        &format!("{}/IncomingPhoneNumbers.json", api_of(&sim, &sub)),
        &[
            ("PhoneNumber", "+14155550142"),
            ("VoiceUrl", &receiver.url("/tenant-voice?line=1")),
            ("VoiceMethod", "GET"),
            ("StatusCallback", &receiver.url("/tenant-status")),
        ],
    )
    .await;
    assert_eq!(status, 201, "{number}");
    let pn = number["sid"].as_str().expect("sid").to_owned();

    let sid = sim
        .inbound("+14155550198", "+14155550142")
        .await
        .expect("inbound call");
    let call = wait_status(&sim, &sid, "in-progress").await;
    assert_eq!(call.account_sid, sub);
    let voice = wait_hits(&receiver, "/tenant-voice", 1).await;
    assert_eq!(voice[0].method, "GET");
    assert_eq!(voice[0].param("line"), Some("1"));
    assert_eq!(voice[0].param("AccountSid"), Some(sub.as_str()));
    assert_eq!(voice[0].param("To"), Some("+14155550142"));
    assert_eq!(voice[0].param("CallStatus"), Some("ringing"));
    assert!(voice[0].signed_with(&sub_token), "{:?}", voice[0]);
    assert!(!voice[0].signature_ok(), "not the main account's token");

    // The softphone that rings is tenant A's.
    let leg = wait_for("the client leg", || {
        sim.calls()
            .into_iter()
            .find(|c| c.parent_call_sid.as_deref() == Some(sid.as_str()))
    })
    .await;
    assert_eq!(leg.to, "client:agent_1");
    assert_eq!(leg.account_sid, sub);
    let snapshot = sim_get(&sim, &format!("/__sim/calls/{}", leg.sid)).await;
    assert_eq!(snapshot["account_sid"], sub.as_str());

    let (status, fetched) = get_as(
        (&sub, &sub_token),
        &format!("{}/Calls/{sid}.json", api_of(&sim, &sub)),
    )
    .await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["phone_number_sid"], pn.as_str());
    assert_eq!(fetched["direction"], "inbound");

    assert!(sim.hangup(&sid));
    wait_over(&sim, &sid).await;
    let status_hits = wait_hits(&receiver, "/tenant-status", 3).await;
    assert_eq!(
        values(&status_hits, "CallStatus"),
        ["ringing", "in-progress", "completed"]
    );
    for hit in &status_hits {
        assert_eq!(hit.param("AccountSid"), Some(sub.as_str()));
        assert!(hit.signed_with(&sub_token), "{hit:?}");
    }

    // A number nobody bought keeps the main account's configured webhooks.
    sim.set_inbound_webhooks(&receiver.url("/main-voice"), None);
    let main = sim
        .inbound("+14155550198", "+18005550100")
        .await
        .expect("inbound to the main account");
    assert_eq!(
        sim.call(&main).map(|c| c.account_sid),
        Some(ACCOUNT_SID.to_owned())
    );
    let main_voice = wait_hits(&receiver, "/main-voice", 1).await;
    assert_eq!(main_voice[0].param("AccountSid"), Some(ACCOUNT_SID));
    assert!(main_voice[0].signature_ok());

    // A number without a VoiceUrl needs one (or an explicit url); a suspended account's
    // numbers take no calls.
    let silent = sim
        .buy_number(&sub, "+14155550143", None, None)
        .expect("bought");
    assert_eq!(silent.account_sid, sub);
    assert!(sim.inbound("+14155550198", "+14155550143").await.is_err());
    let (status, _) = post(
        &format!("{}.json", api_of(&sim, &sub)),
        &[("Status", "suspended")],
    )
    .await;
    assert_eq!(status, 200);
    let refused = sim
        .inbound("+14155550198", "+14155550142")
        .await
        .expect_err("suspended");
    assert!(refused.contains("10003"), "{refused}");
    assert!(sim.buy_number(&sub, "+14155550144", None, None).is_err());
    assert!(
        sim.buy_number(ACCOUNT_SID, "+14155550142", None, None)
            .is_err(),
        "still held by the suspended account"
    );
}
