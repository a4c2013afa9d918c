//! `Conferences.json`, `Conferences/{CF}.json` and the Participants subresource.

use axum::http::StatusCode;
use telephony::callback::CallStatus;
use telephony::twiml::escape;

use super::calls::{check_caller_id, endpoints, status_hook};
use super::params::invalid;
use super::{Reply, Request, render};
use crate::conference::{self, Leave, ParticipantUpdate, Seat};
use crate::engine::{self, NewCall};
use crate::errors::{ApiError, INVALID_PARAMETER, INVALID_STATUS_CALLBACK, INVALID_URL};
use crate::state::{Conference, ConferenceHook, ConferenceStatus, Direction, Source, State};
use crate::util::is_sid;

/// Conference events a `ConferenceStatusCallbackEvent` may name.
const CONFERENCE_EVENTS: [&str; 9] = [
    "start",
    "end",
    "join",
    "leave",
    "mute",
    "hold",
    "modify",
    "speaker",
    "announcement",
];

/// The account's conference `sid`; another account's conference is not found.
fn owned<'s>(
    state: &'s State,
    request: &Request<'_>,
    sid: &str,
) -> Result<&'s Conference, ApiError> {
    state
        .conference(sid)
        .filter(|c| c.account_sid == request.account)
        .ok_or_else(|| ApiError::not_found(request.path))
}

/// `GET Conferences.json` (`FriendlyName`, `Status` filters): the account's conferences,
/// newest first.
pub(crate) fn list(request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = &request.params;
    let status = params
        .one_of("Status", &["init", "in-progress", "completed"])?
        .and_then(|s| ConferenceStatus::parse(&s));
    let name = params.get("FriendlyName");
    let state = request.sim.lock();
    let conferences = state
        .conferences
        .iter()
        .rev()
        .filter(|c| c.account_sid == request.account)
        .filter(|c| name.is_none_or(|n| c.friendly_name == n))
        .filter(|c| status.is_none_or(|s| c.status == s))
        .map(render::conference)
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        render::page(request.path, "conferences", conferences),
    ))
}

/// `GET Conferences/{CF}.json`.
pub(crate) fn fetch(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let state = request.sim.lock();
    let conference = owned(&state, request, sid)?;
    Ok(Reply::Json(StatusCode::OK, render::conference(conference)))
}

/// `POST Conferences/{CF}.json`: `Status=completed` ends it (`conference-ended-via-api`);
/// `AnnounceUrl` is checked and otherwise ignored.
pub(crate) fn update(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let params = &request.params;
    let status = params.one_of("Status", &["completed"])?;
    params.url("AnnounceUrl", INVALID_URL)?;
    params.method("AnnounceMethod")?;
    let sim = request.sim;
    let mut state = sim.lock();
    owned(&state, request, sid)?;
    if status.is_some() {
        conference::end(sim, &mut state, sid, "conference-ended-via-api", None);
    }
    let conference = state
        .conference(sid)
        .map(render::conference)
        .unwrap_or_default();
    Ok(Reply::Json(StatusCode::OK, conference))
}

fn participant_json(
    state: &State,
    conference_sid: &str,
    participant: &str,
) -> Option<serde_json::Value> {
    let conference = state.conference(conference_sid)?;
    let participant = state.participant(conference_sid, participant)?;
    Some(render::participant(
        conference,
        participant,
        state.call(&participant.call_sid),
    ))
}

/// `GET Conferences/{CF}/Participants.json` (`Muted`, `Hold`, `Coaching` filters).
pub(crate) fn participants(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let params = &request.params;
    let muted = params.bool("Muted")?;
    let hold = params.bool("Hold")?;
    let coaching = params.bool("Coaching")?;
    let state = request.sim.lock();
    let conference = owned(&state, request, sid)?;
    let items = conference
        .participants
        .iter()
        .filter(|p| muted.is_none_or(|m| p.muted == m))
        .filter(|p| hold.is_none_or(|h| p.hold == h))
        .filter(|p| coaching.is_none_or(|c| p.coaching == c))
        .map(|p| render::participant(conference, p, state.call(&p.call_sid)))
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        render::page(request.path, "participants", items),
    ))
}

/// `GET Conferences/{CF}/Participants/{CA or label}.json`.
pub(crate) fn participant(
    request: &Request<'_>,
    sid: &str,
    participant: &str,
) -> Result<Reply, ApiError> {
    let state = request.sim.lock();
    owned(&state, request, sid)?;
    participant_json(&state, sid, participant)
        .map(|p| Reply::Json(StatusCode::OK, p))
        .ok_or_else(|| ApiError::not_found(request.path))
}

/// `POST Conferences/{CF}/Participants/{CA}.json`: `Muted`, `Hold` (with `HoldUrl`,
/// `HoldMethod`), `EndConferenceOnExit`, `Coaching`, `CallSidToCoach`; the announce, wait and
/// beep fields are checked and otherwise ignored.
pub(crate) fn update_participant(
    request: &Request<'_>,
    sid: &str,
    participant: &str,
) -> Result<Reply, ApiError> {
    let params = &request.params;
    let update = ParticipantUpdate {
        muted: params.bool("Muted")?,
        hold: params.bool("Hold")?,
        hold_url: params.url("HoldUrl", INVALID_URL)?,
        end_on_exit: params.bool("EndConferenceOnExit")?,
        coaching: params.bool("Coaching")?,
        call_sid_to_coach: coach(params.get("CallSidToCoach"))?,
    };
    params.method("HoldMethod")?;
    params.url("AnnounceUrl", INVALID_URL)?;
    params.method("AnnounceMethod")?;
    params.url("WaitUrl", INVALID_URL)?;
    params.method("WaitMethod")?;
    params.bool("BeepOnExit")?;
    let mut state = request.sim.lock();
    owned(&state, request, sid)?;
    if !conference::update_participant(&mut state, sid, participant, update) {
        return Err(ApiError::not_found(request.path));
    }
    participant_json(&state, sid, participant)
        .map(|p| Reply::Json(StatusCode::OK, p))
        .ok_or_else(|| ApiError::not_found(request.path))
}

fn coach(value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if !is_sid("CA", v) => Err(invalid("CallSidToCoach", v)),
        other => Ok(other.map(str::to_owned)),
    }
}

/// `DELETE Conferences/{CF}/Participants/{CA}.json`: the participant leaves (its TwiML
/// continues after `<Dial>`); one still being dialled is canceled. 204.
pub(crate) fn remove_participant(
    request: &Request<'_>,
    sid: &str,
    participant: &str,
) -> Result<Reply, ApiError> {
    let sim = request.sim;
    let mut state = sim.lock();
    owned(&state, request, sid)?;
    let (call_sid, joined) = state
        .participant(sid, participant)
        .map(|p| (p.call_sid.clone(), p.joined))
        .ok_or_else(|| ApiError::not_found(request.path))?;
    if joined {
        conference::leave(sim, &mut state, &call_sid, Leave::Kicked);
    } else {
        engine::end_call(sim, &mut state, &call_sid, CallStatus::Canceled);
    }
    Ok(Reply::NoContent)
}

/// `POST Conferences/{CF or friendly name}/Participants.json`: dials `To` from `From`; the
/// call (`outbound-api`) joins the conference when answered. 201 with the participant
/// `queued`.
pub(crate) fn add_participant(request: &Request<'_>, conference: &str) -> Result<Reply, ApiError> {
    let params = &request.params;
    let (to, from) = endpoints(params)?;
    let hook = status_hook(params)?;
    let conference_hook = params
        .url("ConferenceStatusCallback", INVALID_STATUS_CALLBACK)?
        .map(|url| -> Result<ConferenceHook, ApiError> {
            Ok(ConferenceHook {
                url,
                method: params.method("ConferenceStatusCallbackMethod")?,
                events: params
                    .events("ConferenceStatusCallbackEvent", &CONFERENCE_EVENTS)?
                    .unwrap_or_else(|| vec!["start".to_owned(), "end".to_owned()]),
            })
        })
        .transpose()?;
    let timeout = params.int("Timeout")?.unwrap_or(60).clamp(5, 600);
    let beep = params
        .one_of("Beep", &["true", "false", "onEnter", "onExit"])?
        .unwrap_or_else(|| "true".to_owned());
    let seat = Seat {
        start_on_enter: params.bool("StartConferenceOnEnter")?.unwrap_or(true),
        end_on_exit: params.bool("EndConferenceOnExit")?.unwrap_or(false),
        muted: params.bool("Muted")?.unwrap_or(false),
        beep,
        wait_url: params.url("WaitUrl", INVALID_URL)?,
        hook: conference_hook,
        label: params.get("Label").map(str::to_owned),
        coach: coach(params.get("CallSidToCoach"))?,
    };
    params.bool("Record")?;
    params.bool("Coaching")?;
    params.bool("EarlyMedia")?;
    params.method("WaitMethod")?;
    if let Some(max) = params.int("MaxParticipants")?
        && !(2..=250).contains(&max)
    {
        return Err(ApiError::bad_request(
            INVALID_PARAMETER,
            format!("MaxParticipants must be between 2 and 250, not {max}"),
        ));
    }
    let sim = request.sim;
    let mut state = sim.lock();
    check_caller_id(&state, &request.account, &from)?;
    let (conference_sid, name) = if is_sid("CF", conference) {
        match owned(&state, request, conference) {
            Ok(c) if c.status != ConferenceStatus::Completed => {
                (c.sid.clone(), c.friendly_name.clone())
            }
            _ => return Err(ApiError::not_found(request.path)),
        }
    } else {
        let sid = conference::find_or_create(sim, &mut state, &request.account, conference);
        (sid, conference.to_owned())
    };
    let sid = engine::create_call(
        sim,
        &mut state,
        NewCall {
            account_sid: request.account.clone(),
            phone_number_sid: None,
            direction: Direction::OutboundApi,
            from,
            to,
            parent: None,
            source: Some(Source::Twiml(join_twiml(&name, &seat))),
            whisper: None,
            hook,
            timeout: timeout as f64,
        },
    );
    conference::add_pending(&mut state, &conference_sid, &sid, &seat);
    let participant = participant_json(&state, &conference_sid, &sid).unwrap_or_default();
    Ok(Reply::Json(StatusCode::CREATED, participant))
}

/// The TwiML a Participants API call runs when answered: `<Dial><Conference>` with the
/// participant's settings.
fn join_twiml(name: &str, seat: &Seat) -> String {
    let mut attributes = vec![
        ("startConferenceOnEnter", seat.start_on_enter.to_string()),
        ("endConferenceOnExit", seat.end_on_exit.to_string()),
        ("muted", seat.muted.to_string()),
        ("beep", seat.beep.clone()),
    ];
    if let Some(url) = &seat.wait_url {
        attributes.push(("waitUrl", url.clone()));
    }
    if let Some(hook) = &seat.hook {
        attributes.push(("statusCallback", hook.url.clone()));
        attributes.push(("statusCallbackMethod", hook.method.as_str().to_owned()));
        attributes.push(("statusCallbackEvent", hook.events.join(" ")));
    }
    if let Some(label) = &seat.label {
        attributes.push(("participantLabel", label.clone()));
    }
    if let Some(coach) = &seat.coach {
        attributes.push(("coach", coach.clone()));
    }
    let attributes: String = attributes
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", escape(v)))
        .collect();
    format!(
        "<Response><Dial><Conference{attributes}>{}</Conference></Dial></Response>",
        escape(name)
    )
}
