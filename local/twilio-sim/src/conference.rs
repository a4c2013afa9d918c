//! Conference transitions (under the state lock, like [`crate::engine`]): joining, leaving,
//! ending, mute and hold, and the signed conference status callbacks they produce.
//!
//! A conference's callback URL, method and events come from the first participant that
//! brings one (`<Conference statusCallback>` or the Participants API's
//! `ConferenceStatusCallback`); events default to `start end`.

use std::sync::Arc;
use std::time::Instant;

use crate::callbacks::{self, Outgoing};
use crate::state::{Conference, ConferenceHook, ConferenceStatus, Participant, Shared, State};
use crate::util;

/// How a participant joins (from `<Conference>` or the Participants API).
#[derive(Debug, Clone)]
pub(crate) struct Seat {
    pub start_on_enter: bool,
    pub end_on_exit: bool,
    pub muted: bool,
    pub beep: String,
    pub wait_url: Option<String>,
    pub hook: Option<ConferenceHook>,
    pub label: Option<String>,
    pub coach: Option<String>,
}

/// Why a participant leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Its call ended.
    HungUp,
    /// Its call was redirected to new TwiML.
    Redirected,
    /// Removed with `DELETE .../Participants/{CA}.json`: its TwiML continues after `<Dial>`.
    Kicked,
}

/// The account's live conference called `name`, created (`init`) when there is none.
pub(crate) fn find_or_create(
    sim: &Arc<Shared>,
    state: &mut State,
    account_sid: &str,
    name: &str,
) -> String {
    if let Some(conference) = state.active_conference(account_sid, name) {
        return conference.sid.clone();
    }
    let now = util::now();
    let sid = util::new_sid("CF");
    state.conferences.push(Conference {
        sid: sid.clone(),
        account_sid: account_sid.to_owned(),
        friendly_name: name.to_owned(),
        status: ConferenceStatus::Init,
        created: now,
        updated: now,
        participants: Vec::new(),
        hook: None,
        sequence: 0,
        callbacks: Some(callbacks::queue(sim)),
        reason_ended: None,
        call_sid_ending: None,
    });
    sid
}

fn new_participant(call_sid: &str, seat: &Seat) -> Participant {
    let now = util::now();
    Participant {
        call_sid: call_sid.to_owned(),
        label: seat.label.clone(),
        joined: false,
        muted: seat.muted,
        hold: false,
        hold_url: None,
        start_on_enter: seat.start_on_enter,
        end_on_exit: seat.end_on_exit,
        coaching: seat.coach.is_some(),
        call_sid_to_coach: seat.coach.clone(),
        wait_url: seat.wait_url.clone(),
        created: now,
        updated: now,
        joined_at: None,
    }
}

/// A call being dialled by the Participants API: listed (not joined) until it answers.
pub(crate) fn add_pending(state: &mut State, conference_sid: &str, call_sid: &str, seat: &Seat) {
    let Some(conference) = state.conference_mut(conference_sid) else {
        return;
    };
    if conference.hook.is_none() {
        conference.hook = seat.hook.clone();
    }
    conference
        .participants
        .push(new_participant(call_sid, seat));
    if let Some(call) = state.call_mut(call_sid) {
        call.conference = Some(conference_sid.to_owned());
    }
}

/// `call_sid` joins its account's live conference `name` (creating it); `participant-join`,
/// then `conference-start` when this participant starts it.
pub(crate) fn join(
    sim: &Arc<Shared>,
    state: &mut State,
    call_sid: &str,
    name: &str,
    seat: &Seat,
) -> String {
    let account_sid = state
        .call(call_sid)
        .map_or_else(|| sim.account_sid.clone(), |c| c.account_sid.clone());
    let sid = find_or_create(sim, state, &account_sid, name);
    let Some(conference) = state.conference_mut(&sid) else {
        return sid;
    };
    if conference.hook.is_none() {
        conference.hook = seat.hook.clone();
    }
    let now = util::now();
    let index = match conference
        .participants
        .iter()
        .position(|p| p.call_sid == call_sid)
    {
        Some(index) => index,
        None => {
            conference
                .participants
                .push(new_participant(call_sid, seat));
            conference.participants.len() - 1
        }
    };
    let participant = &mut conference.participants[index];
    participant.joined = true;
    participant.joined_at = Some(Instant::now());
    participant.updated = now;
    let participant = participant.clone();
    event(
        conference,
        "participant-join",
        Some(&participant),
        Vec::new(),
    );
    if participant.start_on_enter && conference.status == ConferenceStatus::Init {
        conference.status = ConferenceStatus::InProgress;
        conference.updated = now;
        event(conference, "conference-start", None, Vec::new());
    }
    if conference.status == ConferenceStatus::Init
        && let Some(wait_url) = &participant.wait_url
    {
        tracing::debug!(call = call_sid, %wait_url, "waiting for the conference to start (waitUrl is not fetched)");
    }
    if let Some(call) = state.call_mut(call_sid) {
        call.conference = Some(sid.clone());
        call.conference_exit = None;
    }
    sid
}

/// `call_sid` leaves its conference (if in one): `participant-leave`, and the conference ends
/// when the participant had `endConferenceOnExit` or was the last one in.
pub(crate) fn leave(sim: &Arc<Shared>, state: &mut State, call_sid: &str, how: Leave) {
    let Some(conference_sid) = state.call_mut(call_sid).and_then(|c| c.conference.take()) else {
        return;
    };
    let Some(conference) = state.conference_mut(&conference_sid) else {
        return;
    };
    let Some(index) = conference
        .participants
        .iter()
        .position(|p| p.call_sid == call_sid)
    else {
        return;
    };
    let participant = conference.participants.remove(index);
    if !participant.joined {
        // A Participants API call that never got in; a conference nobody ever joined
        // closes quietly once nobody is on the way either.
        if conference.participants.is_empty() && conference.status == ConferenceStatus::Init {
            conference.status = ConferenceStatus::Completed;
            conference.updated = util::now();
            conference.callbacks = None;
        }
        return;
    }
    conference.updated = util::now();
    event(
        conference,
        "participant-leave",
        Some(&participant),
        Vec::new(),
    );
    let anyone_left = conference.participants.iter().any(|p| p.joined);
    let kicked = how == Leave::Kicked;
    let reason = if participant.end_on_exit {
        Some(if kicked {
            "participant-with-end-conference-on-exit-kicked"
        } else {
            "participant-with-end-conference-on-exit-left"
        })
    } else if !anyone_left {
        Some(if kicked {
            "last-participant-kicked"
        } else {
            "last-participant-left"
        })
    } else {
        None
    };
    if kicked {
        resume(sim, state, &participant);
    }
    if let Some(reason) = reason {
        end(
            sim,
            state,
            &conference_sid,
            reason,
            Some(call_sid.to_owned()),
        );
    }
}

/// The participant's TwiML continues after `<Dial>` (it left without hanging up).
fn resume(sim: &Shared, state: &mut State, participant: &Participant) {
    let seconds = participant
        .joined_at
        .map(|at| sim.simulated(at.elapsed()).round() as u64)
        .unwrap_or(0);
    if let Some(call) = state.call_mut(&participant.call_sid) {
        call.conference = None;
        call.conference_exit = Some(seconds);
        call.wake.notify_one();
    }
}

/// Ends a conference: everyone still in leaves (`participant-leave` each, and their TwiML
/// continues after `<Dial>`), then `conference-end` with the reason.
pub(crate) fn end(
    sim: &Arc<Shared>,
    state: &mut State,
    conference_sid: &str,
    reason: &'static str,
    ending_call: Option<String>,
) {
    let Some(conference) = state.conference_mut(conference_sid) else {
        return;
    };
    if conference.status == ConferenceStatus::Completed {
        return;
    }
    conference.status = ConferenceStatus::Completed;
    conference.updated = util::now();
    conference.reason_ended = Some(reason);
    conference.call_sid_ending = ending_call.clone();
    let remaining = std::mem::take(&mut conference.participants);
    for participant in remaining.iter().filter(|p| p.joined) {
        event(
            conference,
            "participant-leave",
            Some(participant),
            Vec::new(),
        );
    }
    let mut extra = vec![("ReasonConferenceEnded".to_owned(), reason.to_owned())];
    if let Some(call) = ending_call {
        extra.push(("CallSidEndingConference".to_owned(), call));
    }
    event(conference, "conference-end", None, extra);
    conference.callbacks = None;
    for participant in &remaining {
        if participant.joined {
            resume(sim, state, participant);
        } else if let Some(call) = state.call_mut(&participant.call_sid) {
            call.conference = None;
        }
    }
}

/// Changes to a participant (`POST .../Participants/{CA}.json`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ParticipantUpdate {
    pub muted: Option<bool>,
    pub hold: Option<bool>,
    pub hold_url: Option<String>,
    pub end_on_exit: Option<bool>,
    pub coaching: Option<bool>,
    pub call_sid_to_coach: Option<String>,
}

/// Applies `update`; `participant-mute`/`-unmute`/`-hold`/`-unhold` for what changed.
/// False when the participant is not in the conference.
pub(crate) fn update_participant(
    state: &mut State,
    conference_sid: &str,
    call_sid: &str,
    update: ParticipantUpdate,
) -> bool {
    let Some(conference) = state.conference_mut(conference_sid) else {
        return false;
    };
    let Some(index) = conference
        .participants
        .iter()
        .position(|p| p.call_sid == call_sid || p.label.as_deref() == Some(call_sid))
    else {
        return false;
    };
    let mut events = Vec::new();
    {
        let participant = &mut conference.participants[index];
        if let Some(muted) = update.muted
            && muted != participant.muted
        {
            participant.muted = muted;
            events.push(if muted {
                "participant-mute"
            } else {
                "participant-unmute"
            });
        }
        if let Some(hold) = update.hold
            && hold != participant.hold
        {
            participant.hold = hold;
            events.push(if hold {
                "participant-hold"
            } else {
                "participant-unhold"
            });
        }
        if update.hold_url.is_some() {
            participant.hold_url = update.hold_url;
        }
        if let Some(end_on_exit) = update.end_on_exit {
            participant.end_on_exit = end_on_exit;
        }
        if let Some(coaching) = update.coaching {
            participant.coaching = coaching;
        }
        if update.call_sid_to_coach.is_some() {
            participant.call_sid_to_coach = update.call_sid_to_coach;
        }
        participant.updated = util::now();
    }
    let participant = conference.participants[index].clone();
    if participant.joined {
        for name in events {
            event(conference, name, Some(&participant), Vec::new());
        }
    }
    true
}

/// The `statusCallbackEvent` group an event belongs to.
fn group(event: &str) -> &'static str {
    match event {
        "conference-start" => "start",
        "conference-end" => "end",
        "participant-join" => "join",
        "participant-leave" => "leave",
        "participant-mute" | "participant-unmute" => "mute",
        "participant-hold" | "participant-unhold" => "hold",
        _ => "",
    }
}

/// Queues a conference status callback when the conference subscribed to its group.
fn event(
    conference: &mut Conference,
    name: &str,
    participant: Option<&Participant>,
    extra: Vec<(String, String)>,
) {
    let Some(hook) = conference.hook.clone() else {
        return;
    };
    if !hook.events.iter().any(|e| e == group(name)) {
        return;
    }
    let mut params = vec![
        ("AccountSid".to_owned(), conference.account_sid.clone()),
        ("ConferenceSid".to_owned(), conference.sid.clone()),
        ("FriendlyName".to_owned(), conference.friendly_name.clone()),
        ("StatusCallbackEvent".to_owned(), name.to_owned()),
        ("SequenceNumber".to_owned(), conference.sequence.to_string()),
        ("Timestamp".to_owned(), util::rfc2822(util::now())),
    ];
    if let Some(p) = participant {
        params.push(("CallSid".to_owned(), p.call_sid.clone()));
        params.push(("Muted".to_owned(), p.muted.to_string()));
        params.push(("Hold".to_owned(), p.hold.to_string()));
        params.push(("Coaching".to_owned(), p.coaching.to_string()));
        params.push(("EndConferenceOnExit".to_owned(), p.end_on_exit.to_string()));
        params.push((
            "StartConferenceOnEnter".to_owned(),
            p.start_on_enter.to_string(),
        ));
        if let Some(label) = &p.label {
            params.push(("ParticipantLabel".to_owned(), label.clone()));
        }
    }
    params.extend(extra);
    conference.sequence += 1;
    if let Some(queue) = &conference.callbacks {
        let _ = queue.send(Outgoing {
            account_sid: conference.account_sid.clone(),
            url: hook.url,
            method: hook.method,
            params,
            kind: "conference",
        });
    }
}
