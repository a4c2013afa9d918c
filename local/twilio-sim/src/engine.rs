//! Call state transitions. Every function here runs under the state lock and never awaits:
//! it changes the state, queues status callbacks and wakes the call tasks concerned. The
//! timing lives in [`crate::runner`].

use std::sync::Arc;
use std::time::Instant;

use telephony::callback::CallStatus;
use tokio::sync::Notify;

use crate::callbacks::{self, Outgoing};
use crate::conference::{self, Leave};
use crate::state::{Call, DialLink, DialOutcome, Direction, Shared, Source, State, StatusHook};
use crate::twiml::LegSpec;
use crate::util;

/// What a new call is.
#[derive(Debug, Clone)]
pub(crate) struct NewCall {
    /// The account the call belongs to (its webhooks carry it and are signed with its token).
    pub account_sid: String,
    /// The IncomingPhoneNumber an inbound call reached.
    pub phone_number_sid: Option<String>,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub parent: Option<String>,
    pub source: Option<Source>,
    pub whisper: Option<Source>,
    pub hook: Option<StatusHook>,
    /// Ring timeout, simulated seconds.
    pub timeout: f64,
}

/// Creates a call and starts its task; an inbound call starts ringing (and running its
/// TwiML) at once, an outbound one is `queued`.
pub(crate) fn create_call(sim: &Arc<Shared>, state: &mut State, new: NewCall) -> String {
    let sid = util::new_sid("CA");
    let now = util::now();
    let inbound = new.direction == Direction::Inbound;
    let mut call = Call {
        sid: sid.clone(),
        account_sid: new.account_sid,
        direction: new.direction,
        from: new.from,
        to: new.to,
        parent: new.parent.clone(),
        phone_number_sid: new.phone_number_sid,
        status: if inbound {
            CallStatus::Ringing
        } else {
            CallStatus::Queued
        },
        created: now,
        updated: now,
        start_time: None,
        end_time: None,
        answered_at: None,
        duration: None,
        price: None,
        events: Vec::new(),
        verbs: Vec::new(),
        hook: new.hook,
        sequence: 0,
        callbacks: Some(callbacks::queue(sim)),
        source: new.source,
        whisper: new.whisper,
        timeout: new.timeout,
        running: inbound,
        generation: 0,
        pending: None,
        wake: Arc::new(Notify::new()),
        hangup_at: None,
        dial: None,
        dial_outcome: None,
        bridge_parent: new.parent,
        conference: None,
        conference_exit: None,
    };
    if inbound {
        status_event(&mut call, "ringing");
    }
    state.insert_call(call);
    sim.runtime
        .spawn(crate::runner::run(Arc::clone(sim), sid.clone()));
    sid
}

/// The fields of every voice request (and the base of status callbacks).
pub(crate) fn voice_params(call: &Call, call_status: &str) -> Vec<(String, String)> {
    let mut params = vec![
        ("AccountSid".to_owned(), call.account_sid.clone()),
        ("CallSid".to_owned(), call.sid.clone()),
        ("From".to_owned(), call.from.clone()),
        ("To".to_owned(), call.to.clone()),
        ("Caller".to_owned(), call.from.clone()),
        ("Called".to_owned(), call.to.clone()),
        ("CallStatus".to_owned(), call_status.to_owned()),
        ("Direction".to_owned(), call.direction.as_str().to_owned()),
        ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
    ];
    if let Some(parent) = &call.parent {
        params.push(("ParentCallSid".to_owned(), parent.clone()));
    }
    params
}

/// Queues the status callback of `event` (`initiated`, `ringing`, `answered`, `completed`)
/// when the call subscribed to it.
pub(crate) fn status_event(call: &mut Call, event: &str) {
    let Some(hook) = call.hook.clone() else {
        return;
    };
    if !hook.events.iter().any(|e| e == event) {
        return;
    }
    let call_status = match event {
        "answered" => "in-progress",
        "completed" => call.status.as_str(),
        other => other,
    };
    let mut params = voice_params(call, call_status);
    params.push((
        "CallbackSource".to_owned(),
        "call-progress-events".to_owned(),
    ));
    params.push(("SequenceNumber".to_owned(), call.sequence.to_string()));
    params.push(("Timestamp".to_owned(), util::rfc2822(util::now())));
    if event == "completed" {
        let seconds = call.duration.unwrap_or(0);
        params.push(("CallDuration".to_owned(), seconds.to_string()));
        params.push((
            "Duration".to_owned(),
            util::billed_minutes(seconds).to_string(),
        ));
    }
    call.sequence += 1;
    call.events.push(call_status.to_owned());
    if let Some(queue) = &call.callbacks {
        let _ = queue.send(Outgoing {
            account_sid: call.account_sid.clone(),
            url: hook.url,
            method: hook.method,
            params,
            kind: "status",
        });
    }
}

/// `queued` → `initiated` (the REST status stays `queued`).
pub(crate) fn initiated(state: &mut State, sid: &str) {
    if let Some(call) = state.call_mut(sid)
        && call.status == CallStatus::Queued
    {
        call.status = CallStatus::Initiated;
        call.updated = util::now();
        status_event(call, "initiated");
    }
}

/// → `ringing`.
pub(crate) fn ringing(state: &mut State, sid: &str) {
    if let Some(call) = state.call_mut(sid)
        && matches!(call.status, CallStatus::Queued | CallStatus::Initiated)
    {
        call.status = CallStatus::Ringing;
        call.updated = util::now();
        status_event(call, "ringing");
    }
}

/// → `in-progress`; false when the call was not waiting for an answer.
pub(crate) fn answer(state: &mut State, sid: &str) -> bool {
    let Some(call) = state.call_mut(sid) else {
        return false;
    };
    if call.is_over() || call.status == CallStatus::InProgress {
        return false;
    }
    let now = util::now();
    call.status = CallStatus::InProgress;
    call.answered_at = Some(Instant::now());
    call.start_time = Some(now);
    call.updated = now;
    call.running = true;
    status_event(call, "answered");
    true
}

/// Simulated seconds since the call was answered, rounded; 0 when it never was.
fn talk_seconds(sim: &Shared, call: &Call) -> u64 {
    call.answered_at
        .map(|at| sim.simulated(at.elapsed()).round() as u64)
        .unwrap_or(0)
}

/// Ends a call with `status` (`completed`, `busy`, `no-answer`, `failed`, `canceled`):
/// end time, duration, price, the final status callback; then what hangs on it — the leg
/// it dialled ends, the call that dialled it resumes, its conference seat is freed. False
/// when the call is unknown or already over.
pub(crate) fn end_call(
    sim: &Arc<Shared>,
    state: &mut State,
    sid: &str,
    status: CallStatus,
) -> bool {
    let Some(call) = state.call_mut(sid) else {
        return false;
    };
    if call.is_over() {
        return false;
    }
    let now = util::now();
    let seconds = talk_seconds(sim, call);
    call.status = status;
    call.end_time = Some(now);
    call.start_time.get_or_insert(now);
    call.updated = now;
    call.duration = Some(seconds);
    call.price = util::price(call.direction == Direction::Inbound, seconds);
    call.hangup_at = None;
    call.pending = None;
    status_event(call, "completed");
    // Closing the queue lets its worker finish once the last callback is sent.
    call.callbacks = None;
    call.wake.notify_one();
    let dial = call.dial.take();
    let parent = call.bridge_parent.take();

    if let Some(DialLink { child }) = dial {
        let child_answered = state
            .call(&child)
            .is_some_and(|c| c.status == CallStatus::InProgress);
        let child_status = if child_answered {
            CallStatus::Completed
        } else {
            CallStatus::Canceled
        };
        end_call(sim, state, &child, child_status);
    }
    if let Some(parent) = parent {
        resume_parent(state, &parent, sid, status, seconds);
    }
    conference::leave(sim, state, sid, Leave::HungUp);
    true
}

/// Tells the call that dialled `child` how the leg ended, if it is still waiting for it.
fn resume_parent(state: &mut State, parent: &str, child: &str, status: CallStatus, seconds: u64) {
    if let Some(call) = state.call_mut(parent)
        && call.dial.as_ref().is_some_and(|d| d.child == child)
    {
        call.dial = None;
        call.dial_outcome = Some(DialOutcome {
            status,
            child: Some(child.to_owned()),
            duration: seconds,
        });
        call.wake.notify_one();
    }
}

/// What an update with `Url`/`Twiml` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// The running TwiML was interrupted; the new document runs now.
    Now,
    /// The call is not answered yet: the new document runs when it is.
    OnAnswer,
    /// The call is over.
    Over,
}

/// Redirects a call to new TwiML. A call in a `<Dial>` drops the leg it dialled (completed,
/// or canceled while ringing); a call in a conference leaves it; a dialled leg stops being
/// bridged (its parent's `<Dial>` ends as completed).
pub(crate) fn redirect(
    sim: &Arc<Shared>,
    state: &mut State,
    sid: &str,
    source: Source,
) -> Redirect {
    let Some(call) = state.call_mut(sid) else {
        return Redirect::Over;
    };
    if call.is_over() {
        return Redirect::Over;
    }
    if !call.running {
        call.source = Some(source);
        call.updated = util::now();
        return Redirect::OnAnswer;
    }
    call.generation += 1;
    call.pending = Some(source);
    call.updated = util::now();
    call.wake.notify_one();
    let seconds = talk_seconds(sim, call);
    let dial = call.dial.take();
    let parent = call.bridge_parent.take();
    if let Some(DialLink { child }) = dial {
        let child_answered = state
            .call(&child)
            .is_some_and(|c| c.status == CallStatus::InProgress);
        let status = if child_answered {
            CallStatus::Completed
        } else {
            CallStatus::Canceled
        };
        end_call(sim, state, &child, status);
    }
    if let Some(parent) = parent {
        resume_parent(state, &parent, sid, CallStatus::Completed, seconds);
    }
    conference::leave(sim, state, sid, Leave::Redirected);
    Redirect::Now
}

/// Starts the remote party's talk timer of an `outbound-api` call joining a conference
/// (the callee stays `talk_seconds`, then hangs up). In a `<Dial><Number>` bridge the
/// dialled leg's timer ends the bridge instead; inbound callers have none.
pub(crate) fn start_talk_timer(sim: &Shared, state: &mut State, sid: &str) {
    if let Some(call) = state.call_mut(sid)
        && call.direction == Direction::OutboundApi
        && call.hangup_at.is_none()
    {
        call.hangup_at = Some(Instant::now() + sim.real(sim.talk_seconds));
    }
}

/// A dialled leg was answered (and its whisper ran): it is bridged, and its party hangs
/// up after `talk_seconds`.
pub(crate) fn bridge(sim: &Shared, state: &mut State, sid: &str) {
    if let Some(call) = state.call_mut(sid)
        && !call.is_over()
    {
        call.hangup_at = Some(Instant::now() + sim.real(sim.talk_seconds));
    }
}

/// Places the leg of a `<Dial><Number|Client|Sip>` (URLs already absolute): a child call
/// (`outbound-dial`, `parent_call_sid`) the parent waits for. `None` when the parent is over.
pub(crate) fn start_dial(
    sim: &Arc<Shared>,
    state: &mut State,
    parent: &str,
    leg: &LegSpec,
    timeout: u32,
    caller_id: Option<String>,
) -> Option<String> {
    let (from, account_sid) = {
        let call = state.call(parent).filter(|c| !c.is_over())?;
        (
            caller_id.unwrap_or_else(|| call.from.clone()),
            call.account_sid.clone(),
        )
    };
    let hook = leg.status_callback.clone().map(|url| StatusHook {
        url,
        method: leg.status_callback_method,
        events: leg.events.clone(),
    });
    let child = create_call(
        sim,
        state,
        NewCall {
            account_sid,
            phone_number_sid: None,
            direction: Direction::OutboundDial,
            from,
            to: leg.to.clone(),
            parent: Some(parent.to_owned()),
            source: None,
            whisper: leg.url.clone().map(|url| Source::Url {
                url,
                method: leg.url_method,
            }),
            hook,
            timeout: f64::from(timeout),
        },
    );
    if let Some(call) = state.call_mut(parent) {
        call.dial = Some(DialLink {
            child: child.clone(),
        });
        call.dial_outcome = None;
    }
    Some(child)
}

/// Records an executed verb in the call log.
pub(crate) fn record_verb(state: &mut State, sid: &str, verb: String) {
    if let Some(call) = state.call_mut(sid) {
        call.verbs.push(verb);
    }
}

/// The remote party hangs up: a live call completes; one still queued or ringing ends as
/// `no-answer`. False when unknown or over.
pub(crate) fn remote_hangup(sim: &Arc<Shared>, state: &mut State, sid: &str) -> bool {
    let Some(call) = state.call(sid) else {
        return false;
    };
    let status = match call.status {
        CallStatus::InProgress => CallStatus::Completed,
        _ => CallStatus::NoAnswer,
    };
    end_call(sim, state, sid, status)
}
