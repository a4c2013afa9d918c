//! Resources as the 2010-04-01 spec lists them (`api.v2010.account.call`, `.conference`,
//! `.conference.participant`) and the list page envelope.

use serde_json::{Value, json};
use telephony::callback::CallStatus;

use crate::state::{Call, Conference, Participant};
use crate::util::{formatted, rfc2822};

fn account_path(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}")
}

/// A call resource.
pub(crate) fn call(call: &Call) -> Value {
    let base = format!("{}/Calls/{}", account_path(&call.account_sid), call.sid);
    let sub = |name: &str| format!("{base}/{name}.json");
    json!({
        "sid": call.sid,
        "account_sid": call.account_sid,
        "to": call.to,
        "to_formatted": formatted(&call.to),
        "from": call.from,
        "from_formatted": formatted(&call.from),
        "status": call.rest_status(),
        "direction": call.direction.as_str(),
        "parent_call_sid": call.parent,
        "phone_number_sid": null,
        "start_time": call.start_time.map(rfc2822),
        "end_time": call.end_time.map(rfc2822),
        "duration": call.duration.map(|d| d.to_string()),
        "price": call.price,
        "price_unit": "USD",
        "answered_by": null,
        "annotation": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "forwarded_from": null,
        "group_sid": null,
        "trunk_sid": null,
        "queue_time": "0",
        "date_created": rfc2822(call.created),
        "date_updated": rfc2822(call.updated),
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "notifications": sub("Notifications"),
            "recordings": sub("Recordings"),
            "payments": sub("Payments"),
            "events": sub("Events"),
            "siprec": sub("Siprec"),
            "streams": sub("Streams"),
            "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
            "user_defined_messages": sub("UserDefinedMessages"),
        },
    })
}

/// A conference resource.
pub(crate) fn conference(conference: &Conference) -> Value {
    let base = format!(
        "{}/Conferences/{}",
        account_path(&conference.account_sid),
        conference.sid
    );
    json!({
        "sid": conference.sid,
        "account_sid": conference.account_sid,
        "friendly_name": conference.friendly_name,
        "status": conference.status.as_str(),
        "region": "us1",
        "api_version": "2010-04-01",
        "date_created": rfc2822(conference.created),
        "date_updated": rfc2822(conference.updated),
        "reason_conference_ended": conference.reason_ended,
        "call_sid_ending_conference": conference.call_sid_ending,
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "participants": format!("{base}/Participants.json"),
            "recordings": format!("{base}/Recordings.json"),
        },
    })
}

/// The participant status: `connected` once in; before that, from its call.
fn participant_status(participant: &Participant, call: Option<&Call>) -> &'static str {
    if participant.joined {
        return "connected";
    }
    match call.map(|c| c.status) {
        Some(CallStatus::Queued) => "queued",
        Some(CallStatus::Ringing) => "ringing",
        Some(CallStatus::Completed) => "complete",
        Some(status) if status.is_final() => "failed",
        _ => "connecting",
    }
}

/// A participant resource.
pub(crate) fn participant(
    conference: &Conference,
    participant: &Participant,
    call: Option<&Call>,
) -> Value {
    json!({
        "account_sid": conference.account_sid,
        "call_sid": participant.call_sid,
        "conference_sid": conference.sid,
        "label": participant.label,
        "call_sid_to_coach": participant.call_sid_to_coach,
        "coaching": participant.coaching,
        "muted": participant.muted,
        "hold": participant.hold,
        "start_conference_on_enter": participant.start_on_enter,
        "end_conference_on_exit": participant.end_on_exit,
        "status": participant_status(participant, call),
        "queue_time": "0",
        "date_created": rfc2822(participant.created),
        "date_updated": rfc2822(participant.updated),
        "uri": format!(
            "{}/Conferences/{}/Participants/{}.json",
            account_path(&conference.account_sid),
            conference.sid,
            participant.call_sid
        ),
    })
}

/// One page holding every item (`PageSize` is not honoured: the simulator holds little).
pub(crate) fn page(path: &str, key: &str, items: Vec<Value>) -> Value {
    let size = items.len().max(50);
    let end = items.len().saturating_sub(1);
    let first = format!("{path}?PageSize={size}&Page=0");
    json!({
        key: items,
        "uri": path,
        "first_page_uri": first,
        "next_page_uri": null,
        "previous_page_uri": null,
        "page": 0,
        "page_size": size,
        "start": 0,
        "end": end,
    })
}
