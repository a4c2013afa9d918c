//! Accounts: subaccounts created and managed by the main account, Basic auth per account,
//! and each account seeing only its own calls and conferences.

use axum::http::Method;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use twilio_sim::{ACCOUNT_SID, AUTH_TOKEN, SimOptions};

use crate::common::*;

const TWIML: &str = "<Response><Pause length=\"600\"/></Response>";

fn accounts_url(sim: &twilio_sim::Simulator) -> String {
    format!("{}/2010-04-01/Accounts.json", sim.base_url)
}

fn sids(list: &Value) -> Vec<String> {
    list["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["sid"].as_str().expect("sid").to_owned())
        .collect()
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn the_main_account_creates_lists_and_manages_subaccounts() {
    let sim = simulator(options()).await;
    let url = accounts_url(&sim);

    let (status, a) = post(&url, &[("FriendlyName", "tenant-a")]).await;
    assert_eq!(status, 201, "{a}");
    let a_sid = a["sid"].as_str().expect("sid").to_owned();
    let a_token = a["auth_token"].as_str().expect("auth_token").to_owned();
    assert!(
        a_sid.starts_with("AC") && is_hex(&a_sid[2..], 32),
        "{a_sid}"
    );
    assert!(is_hex(&a_token, 32), "{a_token}");
    assert_eq!(a["owner_account_sid"], ACCOUNT_SID);
    assert_eq!(a["friendly_name"], "tenant-a");
    assert_eq!(a["status"], "active");
    assert_eq!(a["type"], "Full");
    for field in ["date_created", "date_updated"] {
        OffsetDateTime::parse(a[field].as_str().expect(field), &Rfc2822).expect(field);
    }
    assert_eq!(a["uri"], format!("/2010-04-01/Accounts/{a_sid}.json"));
    assert_eq!(
        a["subresource_uris"]["calls"],
        format!("/2010-04-01/Accounts/{a_sid}/Calls.json")
    );
    assert_eq!(
        a["subresource_uris"]["incoming_phone_numbers"],
        format!("/2010-04-01/Accounts/{a_sid}/IncomingPhoneNumbers.json")
    );

    let (status, b) = post(&url, &[]).await;
    assert_eq!(status, 201, "{b}");
    assert!(
        b["friendly_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("SubAccount Created at ")),
        "{b}"
    );
    let b_sid = b["sid"].as_str().expect("sid").to_owned();
    let b_token = b["auth_token"].as_str().expect("auth_token").to_owned();
    assert_ne!((&a_sid, &a_token), (&b_sid, &b_token));

    // Only the main account creates subaccounts; JSON bodies and long names are refused.
    let a_auth = (a_sid.as_str(), a_token.as_str());
    assert_error(
        &post_as(a_auth, &url, &[("FriendlyName", "nested")]).await,
        401,
        20003,
    );
    assert_error(
        &post(&url, &[("FriendlyName", &"x".repeat(65))]).await,
        400,
        20001,
    );
    assert_error(&form(Method::DELETE, &url, &[]).await, 405, 20004);
    assert_eq!(sim.accounts().len(), 3);

    // The main account lists itself and its subaccounts; a subaccount sees only itself.
    let (status, list) = get(&url).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(sids(&list), [ACCOUNT_SID, &a_sid, &b_sid]);
    assert_eq!(list["accounts"][0]["owner_account_sid"], ACCOUNT_SID);
    let (_, named) = get(&format!("{url}?FriendlyName=tenant-a")).await;
    assert_eq!(sids(&named), [a_sid.as_str()]);
    let (_, own) = get_as(a_auth, &url).await;
    assert_eq!(sids(&own), [a_sid.as_str()]);
    assert_error(&get(&format!("{url}?Status=gone")).await, 400, 20001);

    // Fetch: the account itself and its parent may; a sibling may not.
    let a_url = format!("{}.json", api_of(&sim, &a_sid));
    let b_auth = (b_sid.as_str(), b_token.as_str());
    assert_eq!(get(&a_url).await.1["sid"], a_sid.as_str());
    assert_eq!(get_as(a_auth, &a_url).await.1["auth_token"], a_token);
    assert_error(&get_as(b_auth, &a_url).await, 401, 20003);
    assert_error(
        &get_as(a_auth, &format!("{}.json", api(&sim))).await,
        401,
        20003,
    );
    assert_eq!(
        get(&format!("{}.json", api(&sim))).await.1["owner_account_sid"],
        ACCOUNT_SID
    );

    // A subaccount renames itself but cannot change its status.
    let (status, renamed) = post_as(a_auth, &a_url, &[("FriendlyName", "Tenant A")]).await;
    assert_eq!(
        (status, renamed["friendly_name"].as_str()),
        (200, Some("Tenant A"))
    );
    assert_error(
        &post_as(a_auth, &a_url, &[("Status", "closed")]).await,
        401,
        20003,
    );

    // Suspended: its credentials and its path are refused, for its parent too, until the
    // parent reactivates it.
    let a_calls = format!("{}/Calls.json", api_of(&sim, &a_sid));
    assert_eq!(get_as(a_auth, &a_calls).await.0, 200);
    let (status, suspended) = post(&a_url, &[("Status", "suspended")]).await;
    assert_eq!(
        (status, suspended["status"].as_str()),
        (200, Some("suspended"))
    );
    assert_error(&get_as(a_auth, &a_calls).await, 401, 20003);
    assert_error(&get(&a_calls).await, 401, 20003);
    let (_, listed) = get(&format!("{url}?Status=suspended")).await;
    assert_eq!(sids(&listed), [a_sid.as_str()]);
    assert_eq!(post(&a_url, &[("Status", "active")]).await.0, 200);
    assert_eq!(get_as(a_auth, &a_calls).await.0, 200);

    // Closed is final; the main account's own status cannot change.
    let b_url = format!("{}.json", api_of(&sim, &b_sid));
    let (status, closed) = post(&b_url, &[("Status", "closed")]).await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")));
    assert_error(&post(&b_url, &[("Status", "active")]).await, 400, 20001);
    assert_error(
        &get_as(b_auth, &format!("{}/Calls.json", api_of(&sim, &b_sid))).await,
        401,
        20003,
    );
    assert_error(
        &post(&format!("{}.json", api(&sim)), &[("Status", "suspended")]).await,
        400,
        20001,
    );
    assert_error(&post(&a_url, &[("Status", "paused")]).await, 400, 20001);

    // The simulator's view.
    let accounts = sim.accounts();
    assert_eq!(accounts[0].sid, ACCOUNT_SID);
    assert_eq!(accounts[0].auth_token, AUTH_TOKEN);
    assert_eq!(
        accounts[0].caller_ids,
        twilio_sim::DEFAULT_CALLER_IDS.map(str::to_owned)
    );
    assert_eq!(
        sim.account(&b_sid).map(|b| b.status),
        Some("closed".to_owned())
    );
    let over_http = sim_get(&sim, "/__sim/accounts").await;
    assert_eq!(over_http[1]["sid"], a_sid.as_str());
    assert_eq!(over_http[1]["friendly_name"], "Tenant A");
    assert_eq!(over_http[1]["owner_account_sid"], ACCOUNT_SID);
    assert_eq!(over_http[1]["auth_token"], a_token);
    let made = sim.create_subaccount("made in Rust");
    assert_eq!(made.owner_account_sid, ACCOUNT_SID);
    assert_eq!(
        get_as(
            (&made.sid, &made.auth_token),
            &format!("{}.json", api_of(&sim, &made.sid))
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn each_account_sees_only_its_own_calls_and_conferences() {
    // Parties stay put: their talk timer is far away.
    let sim = simulator(SimOptions {
        talk_seconds: 10_000.0,
        ..options()
    })
    .await;
    let receiver = Receiver::start().await;
    let (a_sid, a_token) = subaccount(&sim, "tenant-a").await;
    let (b_sid, b_token) = subaccount(&sim, "tenant-b").await;
    let a_auth = (a_sid.as_str(), a_token.as_str());
    let b_auth = (b_sid.as_str(), b_token.as_str());
    let main_calls = format!("{}/Calls.json", api(&sim));
    let a_calls = format!("{}/Calls.json", api_of(&sim, &a_sid));

    // The main account's call.
    let (status, main_call) = post(
        &main_calls,
        &[
            ("To", "+14155550123"),
            ("From", "+15005550006"),
            ("Twiml", TWIML),
        ],
    )
    .await;
    assert_eq!(status, 201, "{main_call}");
    let main_sid = main_call["sid"].as_str().expect("sid").to_owned();

    // The main account acts on tenant A's path: it buys A a number and calls from it.
    let (status, number) = post(
        &format!("{}/IncomingPhoneNumbers.json", api_of(&sim, &a_sid)),
        &[("PhoneNumber", "+14155550142")],
    )
    .await;
    assert_eq!(status, 201, "{number}");
    assert_eq!(number["account_sid"], a_sid.as_str());
    let status_url = receiver.url("/a-status");
    let (status, a_call) = post(
        &a_calls,
        &[
            ("To", "+14155550124"),
            ("From", "+14155550142"),
            ("Twiml", TWIML),
            ("StatusCallback", &status_url),
            (
                "StatusCallbackEvent",
                "initiated ringing answered completed",
            ),
        ],
    )
    .await;
    assert_eq!(status, 201, "{a_call}");
    let a_call_sid = a_call["sid"].as_str().expect("sid").to_owned();
    assert_eq!(a_call["account_sid"], a_sid.as_str());
    assert_eq!(
        a_call["uri"],
        format!("/2010-04-01/Accounts/{a_sid}/Calls/{a_call_sid}.json")
    );
    assert_eq!(
        sim.call(&a_call_sid).map(|c| c.account_sid),
        Some(a_sid.clone())
    );

    // Lists hold only the account's own calls (the parent's too).
    let listed = |body: &Value| -> Vec<String> {
        body["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .map(|c| c["sid"].as_str().expect("sid").to_owned())
            .collect()
    };
    assert_eq!(listed(&get(&main_calls).await.1), [main_sid.as_str()]);
    assert_eq!(listed(&get(&a_calls).await.1), [a_call_sid.as_str()]);
    assert_eq!(
        listed(&get_as(a_auth, &a_calls).await.1),
        [a_call_sid.as_str()]
    );

    // Fetching another account's call by SID is 404; another account's path is 401.
    let main_call_on_a = format!("{}/Calls/{main_sid}.json", api_of(&sim, &a_sid));
    assert_error(&get_as(a_auth, &main_call_on_a).await, 404, 20404);
    assert_error(
        &post_as(a_auth, &main_call_on_a, &[("Status", "completed")]).await,
        404,
        20404,
    );
    assert_error(
        &get_as(a_auth, &format!("{}/Calls/{main_sid}.json", api(&sim))).await,
        401,
        20003,
    );
    assert_error(&get_as(a_auth, &main_calls).await, 401, 20003);
    let a_call_url = format!("{}/Calls/{a_call_sid}.json", api_of(&sim, &a_sid));
    assert_error(&get_as(b_auth, &a_call_url).await, 401, 20003);
    assert_error(
        &get_as(
            b_auth,
            &format!("{}/Calls/{a_call_sid}.json", api_of(&sim, &b_sid)),
        )
        .await,
        404,
        20404,
    );
    assert_error(
        &get(&format!("{}/Calls/{a_call_sid}.json", api(&sim))).await,
        404,
        20404,
    );
    assert_eq!(get(&a_call_url).await.1["sid"], a_call_sid.as_str());
    assert_eq!(get_as(a_auth, &a_call_url).await.0, 200);
    // Wrong token for a real subaccount.
    assert_error(&get_as((&a_sid, AUTH_TOKEN), &a_calls).await, 401, 20003);

    // A's webhooks carry A's AccountSid and are signed with A's token.
    let (status, _) = post_as(a_auth, &a_call_url, &[("Status", "completed")]).await;
    assert_eq!(status, 200);
    let hits = wait_for("A's final status callback", || {
        let hits = receiver.hits("/a-status");
        hits.iter()
            .any(|h| {
                h.param("CallStatus") == Some("canceled")
                    || h.param("CallStatus") == Some("completed")
            })
            .then_some(hits)
    })
    .await;
    for hit in &hits {
        assert_eq!(hit.param("AccountSid"), Some(a_sid.as_str()));
        assert!(hit.signed_with(&a_token), "{hit:?}");
        assert!(
            !hit.signature_ok(),
            "not signed with the main token: {hit:?}"
        );
    }
    assert!(
        sim.callbacks()
            .iter()
            .filter(|r| r.url == status_url)
            .all(|r| r.account_sid == a_sid)
    );

    // Conferences are per account: the same room name is two rooms.
    let room = "<Response><Dial><Conference>room-1</Conference></Dial></Response>";
    for (calls, from) in [(&main_calls, "+15005550006"), (&a_calls, "+14155550142")] {
        let (status, body) = post(
            calls,
            &[("To", "+14155550125"), ("From", from), ("Twiml", room)],
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let rooms = wait_for("two room-1 conferences", || {
        let rooms: Vec<_> = sim
            .conferences()
            .into_iter()
            .filter(|c| c.friendly_name == "room-1" && c.participants.len() == 1)
            .collect();
        (rooms.len() == 2).then_some(rooms)
    })
    .await;
    let owners: Vec<&str> = rooms.iter().map(|c| c.account_sid.as_str()).collect();
    assert_eq!(owners, [ACCOUNT_SID, a_sid.as_str()]);
    let conference_sids = |body: &Value| -> Vec<String> {
        body["conferences"]
            .as_array()
            .expect("conferences")
            .iter()
            .map(|c| c["sid"].as_str().expect("sid").to_owned())
            .collect()
    };
    let (_, mine) = get_as(
        a_auth,
        &format!("{}/Conferences.json", api_of(&sim, &a_sid)),
    )
    .await;
    assert_eq!(conference_sids(&mine), [rooms[1].sid.as_str()]);
    let (_, main_rooms) = get(&format!("{}/Conferences.json", api(&sim))).await;
    assert_eq!(conference_sids(&main_rooms), [rooms[0].sid.as_str()]);
    assert_error(
        &get_as(
            a_auth,
            &format!("{}/Conferences/{}.json", api_of(&sim, &a_sid), rooms[0].sid),
        )
        .await,
        404,
        20404,
    );
    assert_error(
        &get_as(
            a_auth,
            &format!(
                "{}/Conferences/{}/Participants.json",
                api_of(&sim, &a_sid),
                rooms[0].sid
            ),
        )
        .await,
        404,
        20404,
    );
    let calls = sim_get(&sim, "/__sim/calls").await;
    assert!(
        calls
            .as_array()
            .expect("calls")
            .iter()
            .any(|c| c["account_sid"] == a_sid.as_str()),
        "{calls}"
    );
}
