//! Resources as the 2010-04-01 spec lists them (`api.v2010.account`, `.account.call`,
//! `.conference`, `.conference.participant`, `.incoming_phone_number`,
//! `.available_phone_number_country[.available_phone_number_local|_toll_free]`) and the list
//! page envelope.

use serde_json::{Value, json};
use telephony::callback::CallStatus;

use crate::numbers::{Available, Capabilities};
use crate::state::{Account, Call, Conference, Participant, PhoneNumber};
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
        "phone_number_sid": call.phone_number_sid,
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

/// An account (`auth_token` included, as Twilio shows it to the parent and to itself).
pub(crate) fn account(account: &Account) -> Value {
    let base = account_path(&account.sid);
    let sub = |name: &str| format!("{base}/{name}.json");
    json!({
        "sid": account.sid,
        "auth_token": account.auth_token,
        "owner_account_sid": account.owner,
        "friendly_name": account.friendly_name,
        "status": account.status.as_str(),
        "type": "Full",
        "date_created": rfc2822(account.created),
        "date_updated": rfc2822(account.updated),
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "addresses": sub("Addresses"),
            "applications": sub("Applications"),
            "authorized_connect_apps": sub("AuthorizedConnectApps"),
            "available_phone_numbers": sub("AvailablePhoneNumbers"),
            "balance": sub("Balance"),
            "calls": sub("Calls"),
            "conferences": sub("Conferences"),
            "connect_apps": sub("ConnectApps"),
            "incoming_phone_numbers": sub("IncomingPhoneNumbers"),
            "keys": sub("Keys"),
            "messages": sub("Messages"),
            "notifications": sub("Notifications"),
            "outgoing_caller_ids": sub("OutgoingCallerIds"),
            "queues": sub("Queues"),
            "recordings": sub("Recordings"),
            "short_codes": sub("SMS/ShortCodes"),
            "signing_keys": sub("SigningKeys"),
            "sip": sub("SIP"),
            "transcriptions": sub("Transcriptions"),
            "usage": sub("Usage"),
        },
    })
}

/// A number of a search. The capabilities keys are `voice`, `SMS`, `MMS`, `fax`: the spec's
/// schema spells them in lower case, but Twilio's wire format (and twilio-java's
/// `PhoneNumberCapabilities`, which reads `MMS`/`SMS`) uses upper case for these two here.
pub(crate) fn available(number: &Available) -> Value {
    json!({
        "friendly_name": formatted(&number.phone_number),
        "phone_number": number.phone_number,
        "lata": number.lata,
        "locality": number.locality,
        "rate_center": number.rate_center,
        "latitude": number.latitude,
        "longitude": number.longitude,
        "region": number.region,
        "postal_code": number.postal_code,
        "iso_country": number.iso_country,
        "address_requirements": "none",
        "beta": false,
        "capabilities": {
            "voice": number.capabilities.voice,
            "SMS": number.capabilities.sms,
            "MMS": number.capabilities.mms,
            "fax": number.capabilities.fax,
        },
    })
}

fn capabilities(capabilities: Capabilities) -> Value {
    json!({
        "voice": capabilities.voice,
        "sms": capabilities.sms,
        "mms": capabilities.mms,
        "fax": capabilities.fax,
    })
}

/// An IncomingPhoneNumber (capabilities in lower case, as the spec and Twilio's JSON have
/// them for this resource).
pub(crate) fn incoming_number(number: &PhoneNumber) -> Value {
    let base = format!(
        "{}/IncomingPhoneNumbers/{}",
        account_path(&number.account_sid),
        number.sid
    );
    json!({
        "sid": number.sid,
        "account_sid": number.account_sid,
        "phone_number": number.phone_number,
        "friendly_name": number.friendly_name,
        "capabilities": capabilities(number.capabilities),
        "status": "in-use",
        "type": number.kind.as_str(),
        "origin": "twilio",
        "beta": false,
        "address_requirements": "none",
        "address_sid": null,
        "identity_sid": null,
        "bundle_sid": null,
        "trunk_sid": null,
        "api_version": "2010-04-01",
        "voice_url": number.voice_url,
        "voice_method": number.voice_method.as_str(),
        "voice_fallback_url": number.voice_fallback_url,
        "voice_fallback_method": number.voice_fallback_method.as_str(),
        "voice_caller_id_lookup": number.voice_caller_id_lookup,
        "voice_application_sid": null,
        "voice_receive_mode": "voice",
        "status_callback": number.status_callback,
        "status_callback_method": number.status_callback_method.as_str(),
        "sms_url": number.sms_url,
        "sms_method": number.sms_method.as_str(),
        "sms_fallback_url": number.sms_fallback_url,
        "sms_fallback_method": number.sms_fallback_method.as_str(),
        "sms_application_sid": null,
        "emergency_status": "Inactive",
        "emergency_address_sid": null,
        "emergency_address_status": "unregistered",
        "date_created": rfc2822(number.created),
        "date_updated": rfc2822(number.updated),
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "assigned_add_ons": format!("{base}/AssignedAddOns.json"),
        },
    })
}

/// A country of `AvailablePhoneNumbers.json`.
pub(crate) fn country(account: &str, code: &str, name: &str, toll_free: bool) -> Value {
    let base = format!("{}/AvailablePhoneNumbers/{code}", account_path(account));
    let mut subresources = serde_json::Map::new();
    subresources.insert("local".into(), json!(format!("{base}/Local.json")));
    if toll_free {
        subresources.insert("toll_free".into(), json!(format!("{base}/TollFree.json")));
    }
    json!({
        "country_code": code,
        "country": name,
        "uri": format!("{base}.json"),
        "beta": false,
        "subresource_uris": subresources,
    })
}

/// One page holding every item (`PageSize` is not honoured: the simulator holds little).
pub(crate) fn page(path: &str, key: &str, items: Vec<Value>) -> Value {
    let size = items.len().max(50);
    sized_page(path, key, items, size)
}

/// One page of at most `size` items (already cut to it).
pub(crate) fn sized_page(path: &str, key: &str, items: Vec<Value>, size: usize) -> Value {
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
