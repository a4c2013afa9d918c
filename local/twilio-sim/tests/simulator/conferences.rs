//! Conferences: joining by TwiML and by the Participants API, mute and hold, removal, and
//! the ways a conference ends.

use axum::http::Method;
use twilio_sim::SimOptions;

use crate::common::*;

const FROM: &str = "+15005550006";

/// Participants stay put: their talk timer is far away.
fn patient() -> SimOptions {
    SimOptions {
        talk_seconds: 10_000.0,
        ..options()
    }
}

fn conference_events(hits: &[Hit]) -> Vec<String> {
    values(hits, "StatusCallbackEvent")
}

#[tokio::test]
async fn two_calls_meet_and_the_moderator_ends_the_conference() {
    let sim = simulator(patient()).await;
    let receiver = Receiver::start().await;
    let events_url = receiver.url("/conference-events");
    receiver.serve(
        "/moderator",
        &format!(
            r#"<Response><Dial><Conference endConferenceOnExit="true" statusCallback="{events_url}" statusCallbackEvent="start end join leave mute hold">room-1</Conference></Dial></Response>"#
        ),
    );
    receiver.serve(
        "/after-conference",
        "<Response><Say>Goodbye</Say></Response>",
    );

    // The moderator calls in; a customer is called out and put in the same room.
    assert!(
        sim.inbound("+14155550111", "+18005550100").await.is_err(),
        "no voice URL configured yet"
    );
    sim.set_inbound_webhooks(&receiver.url("/moderator"), None);
    let moderator = sim
        .inbound("+14155550111", "+18005550100")
        .await
        .expect("moderator call");
    wait_for("the moderator in room-1", || {
        sim.call(&moderator)
            .filter(|c| c.conference.as_deref() == Some("room-1"))
    })
    .await;
    let (status, customer) = post(
        &format!("{}/Calls.json", api(&sim)),
        &[
            ("To", "+14155550123"),
            ("From", FROM),
            (
                "Twiml",
                &format!(
                    r#"<Response><Dial action="{}"><Conference>room-1</Conference></Dial></Response>"#,
                    receiver.url("/after-conference")
                ),
            ),
        ],
    )
    .await;
    assert_eq!(status, 201, "{customer}");
    let customer = customer["sid"].as_str().expect("sid").to_owned();
    let room = wait_for("two participants", || {
        sim.conferences()
            .into_iter()
            .find(|c| c.friendly_name == "room-1" && c.participants.len() == 2)
    })
    .await;
    assert_eq!(room.status, "in-progress");
    assert_eq!(room.participants, [moderator.clone(), customer.clone()]);

    let (status, list) = get(&format!(
        "{}/Conferences.json?FriendlyName=room-1&Status=in-progress",
        api(&sim)
    ))
    .await;
    assert_eq!(status, 200, "{list}");
    let conferences = list["conferences"].as_array().expect("conferences");
    assert_eq!(conferences.len(), 1);
    assert_eq!(conferences[0]["sid"], room.sid);
    assert_eq!(conferences[0]["status"], "in-progress");
    let (_, none) = get(&format!("{}/Conferences.json?Status=completed", api(&sim))).await;
    assert_eq!(none["conferences"].as_array().map(Vec::len), Some(0));
    assert_error(
        &get(&format!("{}/Conferences.json?Status=over", api(&sim))).await,
        400,
        20001,
    );

    let participants_url = format!("{}/Conferences/{}/Participants", api(&sim), room.sid);
    let (_, list) = get(&format!("{participants_url}.json")).await;
    let listed = list["participants"].as_array().expect("participants");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|p| p["status"] == "connected"));
    assert_eq!(listed[0]["end_conference_on_exit"], true);
    assert_eq!(listed[1]["end_conference_on_exit"], false);

    // Mute and hold the customer.
    let customer_url = format!("{participants_url}/{customer}.json");
    let (status, muted) = post(&customer_url, &[("Muted", "true")]).await;
    assert_eq!(
        (status, &muted["muted"], &muted["hold"]),
        (200, &true.into(), &false.into())
    );
    let (status, held) = post(
        &customer_url,
        &[
            ("Hold", "true"),
            ("HoldUrl", &receiver.url("/hold.mp3")),
            ("HoldMethod", "GET"),
        ],
    )
    .await;
    assert_eq!((status, &held["hold"]), (200, &true.into()));
    assert_error(
        &post(&customer_url, &[("Muted", "sometimes")]).await,
        400,
        20001,
    );
    let snapshot = sim.call(&customer).expect("customer");
    assert!(snapshot.muted && snapshot.hold);
    assert_eq!(snapshot.conference.as_deref(), Some("room-1"));
    let (_, fetched) = get(&customer_url).await;
    assert_eq!(
        (&fetched["muted"], &fetched["hold"]),
        (&true.into(), &true.into())
    );
    assert_eq!(fetched["conference_sid"], room.sid);

    // The moderator hangs up: endConferenceOnExit ends the room, the customer goes on.
    assert!(sim.hangup(&moderator));
    let customer_done = wait_over(&sim, &customer).await;
    assert_eq!(customer_done.status, "completed");
    assert_eq!(customer_done.verbs, ["Conference:room-1", "Say:Goodbye"]);
    assert_eq!(customer_done.conference, None);
    let action = wait_hits(&receiver, "/after-conference", 1).await;
    assert_eq!(action[0].param("DialCallStatus"), Some("completed"));
    assert!(action[0].signature_ok());

    let hits = wait_hits(&receiver, "/conference-events", 8).await;
    assert_eq!(
        conference_events(&hits),
        [
            "participant-join",
            "conference-start",
            "participant-join",
            "participant-mute",
            "participant-hold",
            "participant-leave",
            "participant-leave",
            "conference-end",
        ]
    );
    assert_eq!(
        values(&hits, "SequenceNumber"),
        ["0", "1", "2", "3", "4", "5", "6", "7"]
    );
    assert_eq!(
        values(&hits, "CallSid")[..3],
        [moderator.clone(), String::new(), customer.clone()]
    );
    assert_eq!(hits[3].param("Muted"), Some("true"));
    assert_eq!(hits[4].param("Hold"), Some("true"));
    assert_eq!(hits[5].param("CallSid"), Some(moderator.as_str()));
    assert_eq!(hits[5].param("EndConferenceOnExit"), Some("true"));
    assert_eq!(
        hits[7].param("ReasonConferenceEnded"),
        Some("participant-with-end-conference-on-exit-left")
    );
    assert_eq!(
        hits[7].param("CallSidEndingConference"),
        Some(moderator.as_str())
    );
    for hit in &hits {
        assert!(hit.signature_ok(), "{hit:?}");
        assert_eq!(hit.param("ConferenceSid"), Some(room.sid.as_str()));
        assert_eq!(hit.param("FriendlyName"), Some("room-1"));
    }

    let (_, ended) = get(&format!("{}/Conferences/{}.json", api(&sim), room.sid)).await;
    assert_eq!(ended["status"], "completed");
    assert_eq!(
        ended["reason_conference_ended"],
        "participant-with-end-conference-on-exit-left"
    );
    assert_eq!(ended["call_sid_ending_conference"], moderator);
    assert_error(&get(&customer_url).await, 404, 20404);
}

#[tokio::test]
async fn participants_are_added_removed_and_the_conference_ended_via_the_api() {
    let sim = simulator(patient()).await;
    let receiver = Receiver::start().await;
    let events_url = receiver.url("/conference-events");
    receiver.serve(
        "/caller",
        &format!(
            r#"<Response><Dial><Conference statusCallback="{events_url}" statusCallbackEvent="start end join leave">room-2</Conference></Dial><Say>Back in the menu</Say></Response>"#
        ),
    );
    sim.set_inbound_webhooks(&receiver.url("/caller"), None);
    let caller = sim
        .inbound("+14155550111", "+18005550100")
        .await
        .expect("caller");
    let room = wait_for("room-2", || {
        sim.conferences()
            .into_iter()
            .find(|c| c.friendly_name == "room-2" && c.participants.len() == 1)
    })
    .await;

    // An agent is dialled into the room by its SID.
    let participants = format!("{}/Conferences/{}/Participants.json", api(&sim), room.sid);
    assert_error(&post(&participants, &[("From", FROM)]).await, 400, 21201);
    let (status, added) = post(
        &participants,
        &[
            ("From", FROM),
            ("To", "+14155550177"),
            ("Label", "agent"),
            ("StatusCallback", &receiver.url("/agent-status")),
            (
                "StatusCallbackEvent",
                "initiated ringing answered completed",
            ),
        ],
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["status"], "queued");
    assert_eq!(added["label"], "agent");
    assert_eq!(added["conference_sid"], room.sid);
    let agent = added["call_sid"].as_str().expect("call_sid").to_owned();
    wait_for("the agent in the room", || {
        sim.conferences()
            .into_iter()
            .find(|c| c.sid == room.sid && c.participants.contains(&agent))
    })
    .await;
    let by_label = format!(
        "{}/Conferences/{}/Participants/agent.json",
        api(&sim),
        room.sid
    );
    let (status, fetched) = get(&by_label).await;
    assert_eq!(
        (status, fetched["call_sid"].as_str()),
        (200, Some(agent.as_str()))
    );
    assert_eq!(fetched["status"], "connected");
    let agent_call = sim.call(&agent).expect("agent call");
    assert_eq!(agent_call.direction, "outbound-api");
    assert_eq!(agent_call.verbs, ["Conference:room-2"]);

    // Removed: the agent's TwiML goes on after <Dial> (nothing left: it hangs up).
    let (status, _) = form(
        Method::DELETE,
        &format!(
            "{}/Conferences/{}/Participants/{agent}.json",
            api(&sim),
            room.sid
        ),
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(wait_over(&sim, &agent).await.status, "completed");
    let agent_status = wait_hits(&receiver, "/agent-status", 4).await;
    assert_eq!(
        values(&agent_status, "CallStatus"),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    let still = sim
        .conferences()
        .into_iter()
        .find(|c| c.sid == room.sid)
        .expect("room-2");
    assert_eq!(
        (still.status.as_str(), still.participants.clone()),
        ("in-progress", vec![caller.clone()])
    );

    // A second agent, addressed by the room's friendly name.
    let (status, second) = post(
        &format!("{}/Conferences/room-2/Participants.json", api(&sim)),
        &[("From", FROM), ("To", "+14155550178"), ("Muted", "true")],
    )
    .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["conference_sid"], room.sid);
    assert_eq!(second["muted"], true);
    let second = second["call_sid"].as_str().expect("call_sid").to_owned();
    wait_for("the second agent in the room", || {
        sim.conferences()
            .into_iter()
            .find(|c| c.sid == room.sid && c.participants.contains(&second))
    })
    .await;
    assert!(sim.call(&second).is_some_and(|c| c.muted));

    // Ended over the API: both go on after <Dial>.
    let conference_url = format!("{}/Conferences/{}.json", api(&sim), room.sid);
    assert_error(
        &post(&conference_url, &[("Status", "paused")]).await,
        400,
        20001,
    );
    let (status, ended) = post(&conference_url, &[("Status", "completed")]).await;
    assert_eq!((status, ended["status"].as_str()), (200, Some("completed")));
    assert_eq!(ended["reason_conference_ended"], "conference-ended-via-api");
    assert!(ended["call_sid_ending_conference"].is_null());
    let caller_done = wait_over(&sim, &caller).await;
    assert_eq!(
        caller_done.verbs,
        ["Conference:room-2", "Say:Back in the menu"]
    );
    assert_eq!(wait_over(&sim, &second).await.status, "completed");

    let hits = wait_hits(&receiver, "/conference-events", 8).await;
    assert_eq!(
        conference_events(&hits),
        [
            "participant-join",
            "conference-start",
            "participant-join",
            "participant-leave",
            "participant-join",
            "participant-leave",
            "participant-leave",
            "conference-end",
        ]
    );
    assert_eq!(
        values(&hits, "CallSid")[4..7],
        [second.clone(), caller.clone(), second.clone()]
    );
    assert_eq!(hits[3].param("CallSid"), Some(agent.as_str()));
    assert_eq!(hits[2].param("ParticipantLabel"), Some("agent"));
    assert_eq!(
        hits[7].param("ReasonConferenceEnded"),
        Some("conference-ended-via-api")
    );
    assert_eq!(hits[7].param("CallSidEndingConference"), None);
    assert!(hits.iter().all(Hit::signature_ok));
}
