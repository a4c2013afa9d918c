//! One task per call: the ringing timeline, then its TwiML. The task never holds the state
//! lock across an `.await`; after every wait or request it re-reads the call and stops when
//! the call ended, or drops what it was doing when the call's generation moved on (a
//! redirect) and runs the new document instead.

use std::sync::Arc;
use std::time::Instant;

use telephony::callback::CallStatus;
use tokio::sync::Notify;

use crate::callbacks::{self, Outgoing};
use crate::conference::{self, Seat};
use crate::engine;
use crate::state::{Call, ConferenceHook, DialOutcome, Direction, Shared, Source, State};
use crate::twiml::{self, ConferenceSpec, Dial, HttpMethod, LegSpec, Target, Verb};

/// Why a task stopped what it was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The call is over.
    Ended,
    /// The call was redirected: run its pending document.
    Redirected,
}

/// A parsed document and the URL it came from (relative URLs resolve against it).
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub verbs: Vec<Verb>,
    pub base: Option<String>,
}

/// How a document finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// It ran out of verbs.
    Ran,
    /// `<Hangup>`, `<Reject>` after answer, or an application error.
    HungUp,
}

/// What comes after a `<Dial>`.
enum AfterDial {
    Continue,
    Replace(Doc),
    End,
}

/// How a dialled number rings out: the status it ends with (`None`: answered) and after
/// how many simulated seconds of ringing. By the last four digits: `0002` busy, `0003`
/// no-answer after min(timeout, 2 × ring), `0004` failed; anything else (and `client:`,
/// `sip:`) answers after `ring` seconds — or is no-answer at `timeout` when that is shorter.
/// An address that is none of these (a `<Number>` that is not E.164) fails at once.
pub(crate) fn ring_plan(to: &str, timeout: f64, ring: f64) -> (Option<CallStatus>, f64) {
    let number = crate::util::is_e164(to);
    if !(number || crate::util::is_client(to) || crate::util::is_sip(to)) {
        return (Some(CallStatus::Failed), 0.0);
    }
    let digits: String = to.chars().filter(char::is_ascii_digit).collect();
    let last4 = if number && digits.len() >= 4 {
        &digits[digits.len() - 4..]
    } else {
        ""
    };
    match last4 {
        "0002" => (Some(CallStatus::Busy), ring),
        "0003" => (Some(CallStatus::NoAnswer), timeout.min(ring * 2.0)),
        "0004" => (Some(CallStatus::Failed), ring),
        _ if timeout < ring => (Some(CallStatus::NoAnswer), timeout),
        _ => (None, ring),
    }
}

/// Runs the call `sid` to its end.
pub(crate) async fn run(sim: Arc<Shared>, sid: String) {
    let (wake, account) = match sim.lock().call(&sid) {
        Some(call) => (Arc::clone(&call.wake), call.account_sid.clone()),
        None => return,
    };
    let mut leg = Leg {
        sim,
        sid,
        account,
        wake,
        generation: 0,
        whisper: false,
    };
    let _ = leg.lifecycle().await;
    // A call whose TwiML ran out (or that errored) hangs up.
    let mut state = leg.sim.lock();
    engine::end_call(&leg.sim, &mut state, &leg.sid, CallStatus::Completed);
}

struct Leg {
    sim: Arc<Shared>,
    sid: String,
    /// The account the call belongs to: its webhooks are signed with that account's token.
    account: String,
    wake: Arc<Notify>,
    generation: u64,
    /// Running a `<Number url>` whisper: no `<Dial>` allowed.
    whisper: bool,
}

impl Leg {
    /// Ok while the call is live and not redirected; ends it when its remote party's time
    /// is up.
    fn check(&self, state: &mut State) -> Result<(), Stop> {
        let Some(call) = state.call(&self.sid) else {
            return Err(Stop::Ended);
        };
        if call.is_over() {
            return Err(Stop::Ended);
        }
        if call.hangup_at.is_some_and(|at| at <= Instant::now()) {
            engine::end_call(&self.sim, state, &self.sid, CallStatus::Completed);
            return Err(Stop::Ended);
        }
        if call.generation != self.generation {
            return Err(Stop::Redirected);
        }
        Ok(())
    }

    fn with_call<T>(&self, f: impl FnOnce(&mut Call) -> T) -> Option<T> {
        self.sim.lock().call_mut(&self.sid).map(f)
    }

    fn interrupted(&self) -> Result<(), Stop> {
        self.check(&mut self.sim.lock())
    }

    /// Waits until `ready` yields a value (`Ok(Some)`), `deadline` passes (`Ok(None)`), or
    /// the call ends or is redirected (`Err`).
    async fn wait<T>(
        &mut self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut Call) -> Option<T>,
    ) -> Result<Option<T>, Stop> {
        loop {
            let hangup_at = {
                let mut state = self.sim.lock();
                self.check(&mut state)?;
                let call = state.call_mut(&self.sid).ok_or(Stop::Ended)?;
                if let Some(value) = ready(call) {
                    return Ok(Some(value));
                }
                call.hangup_at
            };
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Ok(None);
            }
            match [deadline, hangup_at].into_iter().flatten().min() {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// `seconds` simulated seconds pass (unless the call ends or is redirected).
    async fn pause(&mut self, seconds: f64) -> Result<(), Stop> {
        let deadline = Instant::now() + self.sim.real(seconds);
        self.wait(Some(deadline), |_| None::<()>).await.map(|_| ())
    }

    /// Waits for `ready`, however long it takes.
    async fn until<T>(&mut self, mut ready: impl FnMut(&mut Call) -> Option<T>) -> Result<T, Stop> {
        loop {
            if let Some(value) = self.wait(None, &mut ready).await? {
                return Ok(value);
            }
        }
    }

    fn record(&self, verb: String) {
        engine::record_verb(&mut self.sim.lock(), &self.sid, verb);
    }

    /// An inbound call is answered at its first verb other than `<Reject>`.
    fn answer_if_ringing(&self) {
        engine::answer(&mut self.sim.lock(), &self.sid);
    }

    /// Twilio's "application error": the call log shows `Error:<reason>`, then the call
    /// (answered first, if it was ringing) hangs up.
    fn fail(&self, reason: &str) {
        let mut state = self.sim.lock();
        engine::record_verb(&mut state, &self.sid, format!("Error:{reason}"));
        engine::answer(&mut state, &self.sid);
    }

    async fn lifecycle(&mut self) -> Result<(), Stop> {
        let (direction, to, timeout) = self
            .with_call(|c| (c.direction, c.to.clone(), c.timeout))
            .ok_or(Stop::Ended)?;
        if direction == Direction::Inbound {
            let source = self.with_call(|c| c.source.clone()).flatten();
            return self.documents(source).await;
        }
        self.pause(0.1).await?;
        engine::initiated(&mut self.sim.lock(), &self.sid);
        self.pause(0.2).await?;
        engine::ringing(&mut self.sim.lock(), &self.sid);
        let unanswered = self.sim.lock().no_answer.contains(&to);
        let (outcome, after) = if unanswered {
            (Some(CallStatus::NoAnswer), timeout)
        } else {
            ring_plan(&to, timeout, self.sim.ring_seconds)
        };
        self.pause(after).await?;
        let source = {
            let mut state = self.sim.lock();
            self.check(&mut state)?;
            if let Some(status) = outcome {
                engine::end_call(&self.sim, &mut state, &self.sid, status);
                return Err(Stop::Ended);
            }
            engine::answer(&mut state, &self.sid);
            // Read with the answer: from now on, updates redirect instead of replacing it.
            state.call(&self.sid).and_then(|c| c.source.clone())
        };
        if direction == Direction::OutboundDial {
            return self.dialled_leg().await;
        }
        self.documents(source).await
    }

    /// A dialled leg after answering: its whisper, then bridged until someone hangs up.
    async fn dialled_leg(&mut self) -> Result<(), Stop> {
        let whisper = self.with_call(|c| c.whisper.clone()).flatten();
        let outcome = async {
            if let Some(source) = whisper {
                self.whisper = true;
                let finish = self.run_source(source).await;
                self.whisper = false;
                if finish? == Finish::HungUp {
                    return Ok(());
                }
            }
            engine::bridge(&self.sim, &mut self.sim.lock(), &self.sid);
            self.until(|_| None::<()>).await
        }
        .await;
        match outcome {
            // Redirected away from the bridge: it runs its new TwiML like any call.
            Err(Stop::Redirected) => self.documents(None).await,
            other => other,
        }
    }

    /// Runs `first` (or the pending redirect), then every redirect that interrupts it.
    async fn documents(&mut self, first: Option<Source>) -> Result<(), Stop> {
        let mut next = first;
        loop {
            let source = match next.take() {
                Some(source) => source,
                None => {
                    let pending = self.with_call(|c| (c.generation, c.pending.take()));
                    match pending {
                        Some((generation, Some(source))) => {
                            self.generation = generation;
                            source
                        }
                        _ => return Ok(()),
                    }
                }
            };
            match self.run_source(source).await {
                Err(Stop::Redirected) => continue,
                other => return other.map(|_| ()),
            }
        }
    }

    async fn run_source(&mut self, source: Source) -> Result<Finish, Stop> {
        let doc = match source {
            Source::Twiml(xml) => twiml::parse(&xml).map(|verbs| Doc { verbs, base: None }),
            Source::Url { url, method } => {
                let params = self.voice_params().ok_or(Stop::Ended)?;
                self.fetch(url, method, params, "voice").await?
            }
        };
        match doc {
            Ok(doc) => self.execute(doc).await,
            Err(reason) => {
                self.fail(&reason);
                Ok(Finish::HungUp)
            }
        }
    }

    fn voice_params(&self) -> Option<Vec<(String, String)>> {
        self.with_call(|c| engine::voice_params(c, c.rest_status()))
    }

    /// A signed TwiML request; `Err(reason)` inside when the answer is not a document.
    async fn fetch(
        &mut self,
        url: String,
        method: HttpMethod,
        params: Vec<(String, String)>,
        kind: &'static str,
    ) -> Result<Result<Doc, String>, Stop> {
        let out = Outgoing {
            account_sid: self.account.clone(),
            url: url.clone(),
            method,
            params,
            kind,
        };
        let reply = callbacks::send(&self.sim, &out).await;
        self.interrupted()?;
        Ok(match reply {
            Err(error) => Err(error),
            Ok(reply) if !reply.ok() => Err(format!("HTTP {} from {url}", reply.status)),
            Ok(reply) => twiml::parse(&String::from_utf8_lossy(&reply.body)).map(|verbs| Doc {
                verbs,
                base: Some(url),
            }),
        })
    }

    async fn execute(&mut self, mut doc: Doc) -> Result<Finish, Stop> {
        let mut at = 0;
        while let Some(verb) = doc.verbs.get(at).cloned() {
            at += 1;
            if verb != Verb::Reject {
                self.answer_if_ringing();
            }
            match verb {
                Verb::Say { .. } | Verb::Play { .. } | Verb::Pause { .. } => {
                    self.simple(&verb, doc.base.as_deref()).await?;
                }
                Verb::Gather { children, timeout } => {
                    self.record("Gather".into());
                    for child in &children {
                        self.simple(child, doc.base.as_deref()).await?;
                    }
                    self.pause(f64::from(timeout)).await?;
                }
                Verb::Hangup => {
                    self.record("Hangup".into());
                    return Ok(Finish::HungUp);
                }
                Verb::Reject => {
                    self.record("Reject".into());
                    let mut state = self.sim.lock();
                    let ringing = state
                        .call(&self.sid)
                        .is_some_and(|c| c.status == CallStatus::Ringing);
                    if ringing {
                        engine::end_call(&self.sim, &mut state, &self.sid, CallStatus::Busy);
                        return Err(Stop::Ended);
                    }
                    return Ok(Finish::HungUp);
                }
                Verb::Redirect { url, method } => {
                    let Some(url) = resolve(doc.base.as_deref(), &url) else {
                        self.fail(&format!("redirect to an invalid URL '{url}'"));
                        return Ok(Finish::HungUp);
                    };
                    self.record(format!("Redirect:{url}"));
                    let params = self.voice_params().ok_or(Stop::Ended)?;
                    match self.fetch(url, method, params, "voice").await? {
                        Ok(next) => {
                            doc = next;
                            at = 0;
                        }
                        Err(reason) => {
                            self.fail(&reason);
                            return Ok(Finish::HungUp);
                        }
                    }
                }
                Verb::Dial(dial) if !self.whisper => {
                    match self.dial(*dial, doc.base.as_deref()).await? {
                        AfterDial::Continue => {}
                        AfterDial::Replace(next) => {
                            doc = next;
                            at = 0;
                        }
                        AfterDial::End => return Ok(Finish::HungUp),
                    }
                }
                Verb::Dial(_) => self.record("Unsupported:Dial".into()),
                Verb::Wait { label } => {
                    self.record(label);
                    self.until(|_| None::<()>).await?;
                }
                Verb::Unsupported(name) => self.record(format!("Unsupported:{name}")),
            }
        }
        Ok(Finish::Ran)
    }

    /// `<Say>`, `<Play>`, `<Pause>`.
    async fn simple(&mut self, verb: &Verb, base: Option<&str>) -> Result<(), Stop> {
        match verb {
            Verb::Say { text, loops } => {
                self.record(format!("Say:{text}"));
                let words = text.split_whitespace().count() as f64;
                self.pause((words / 2.5).max(1.0) * f64::from(*loops)).await
            }
            Verb::Play { url, loops } => {
                let Some(url) = resolve(base, url) else {
                    self.record(format!("Error:play invalid URL '{url}'"));
                    return Ok(());
                };
                self.record(format!("Play:{url}"));
                let seconds = match callbacks::fetch_media(&self.sim, &url).await {
                    Ok(reply) if reply.ok() => {
                        crate::media::audio_seconds(reply.content_type.as_deref(), &reply.body)
                    }
                    Ok(reply) => {
                        self.record(format!("Error:play {}", reply.status));
                        return self.interrupted();
                    }
                    Err(reason) => {
                        self.record(format!("Error:play {reason}"));
                        return self.interrupted();
                    }
                };
                self.pause(seconds * f64::from(*loops)).await
            }
            Verb::Pause { seconds } => {
                self.record(format!("Pause:{seconds}"));
                self.pause(f64::from(*seconds)).await
            }
            _ => Ok(()),
        }
    }

    async fn dial(&mut self, dial: Dial, base: Option<&str>) -> Result<AfterDial, Stop> {
        let action = match dial.action.as_deref().map(|a| resolve(base, a)) {
            None => None,
            Some(Some(url)) => Some((url, dial.method)),
            Some(None) => {
                self.fail("the <Dial> action is not a valid URL");
                return Ok(AfterDial::End);
            }
        };
        let outcome = match dial.target {
            Target::Empty => {
                self.record("Dial".into());
                return Ok(AfterDial::Continue);
            }
            Target::Unsupported(noun) => {
                self.record(format!("Unsupported:{noun}"));
                return Ok(AfterDial::Continue);
            }
            Target::Leg(leg) => {
                match self.dial_leg(leg, base, dial.timeout, dial.caller_id).await {
                    Ok(outcome) => outcome,
                    Err((Stop::Ended, outcome)) => {
                        self.hung_up_in_dial(action, outcome).await;
                        return Err(Stop::Ended);
                    }
                    Err((stop, _)) => return Err(stop),
                }
            }
            Target::Conference(spec) => match self.conference(spec, base).await {
                Ok(seconds) => DialOutcome {
                    status: CallStatus::Completed,
                    child: None,
                    duration: seconds,
                },
                Err(Stop::Ended) => {
                    let outcome = DialOutcome {
                        status: CallStatus::Completed,
                        child: None,
                        duration: 0,
                    };
                    self.hung_up_in_dial(action, Some(outcome)).await;
                    return Err(Stop::Ended);
                }
                Err(stop) => return Err(stop),
            },
        };
        let Some((url, method)) = action else {
            return Ok(AfterDial::Continue);
        };
        let mut params = self.voice_params().ok_or(Stop::Ended)?;
        params.extend(dial_params(&outcome));
        Ok(match self.fetch(url, method, params, "action").await? {
            Ok(doc) => AfterDial::Replace(doc),
            Err(reason) => {
                self.fail(&reason);
                AfterDial::End
            }
        })
    }

    /// Places the leg and waits for it to end. On `Err`, how the leg stood then.
    async fn dial_leg(
        &mut self,
        mut leg: LegSpec,
        base: Option<&str>,
        timeout: u32,
        caller_id: Option<String>,
    ) -> Result<DialOutcome, (Stop, Option<DialOutcome>)> {
        self.record(format!("Dial:{}", leg.to));
        leg.url = leg.url.and_then(|u| resolve(base, &u));
        leg.status_callback = leg.status_callback.and_then(|u| resolve(base, &u));
        let child = {
            let mut state = self.sim.lock();
            self.check(&mut state).map_err(|stop| (stop, None))?;
            engine::start_dial(&self.sim, &mut state, &self.sid, &leg, timeout, caller_id)
        };
        let Some(child) = child else {
            return Err((Stop::Ended, None));
        };
        match self.until(|call| call.dial_outcome.take()).await {
            Ok(outcome) => Ok(outcome),
            Err(stop) => {
                let state = self.sim.lock();
                let outcome = state.call(&child).map(|c| DialOutcome {
                    status: if c.is_over() {
                        c.status
                    } else {
                        CallStatus::Completed
                    },
                    child: Some(child.clone()),
                    duration: c.duration.unwrap_or(0),
                });
                Err((stop, outcome))
            }
        }
    }

    /// Joins the conference and waits until it ends or this call is removed; returns the
    /// simulated seconds spent in it.
    async fn conference(&mut self, spec: ConferenceSpec, base: Option<&str>) -> Result<u64, Stop> {
        self.record(format!("Conference:{}", spec.name));
        let hook = spec
            .status_callback
            .as_deref()
            .and_then(|u| resolve(base, u))
            .map(|url| ConferenceHook {
                url,
                method: spec.status_callback_method,
                events: spec.events.clone(),
            });
        let seat = Seat {
            start_on_enter: spec.start_on_enter,
            end_on_exit: spec.end_on_exit,
            muted: spec.muted,
            beep: spec.beep.clone(),
            wait_url: spec.wait_url.as_deref().and_then(|u| resolve(base, u)),
            hook,
            label: spec.label.clone(),
            coach: spec.coach.clone(),
        };
        {
            let mut state = self.sim.lock();
            self.check(&mut state)?;
            engine::start_talk_timer(&self.sim, &mut state, &self.sid);
            conference::join(&self.sim, &mut state, &self.sid, &spec.name, &seat);
        }
        self.until(|call| call.conference_exit.take()).await
    }

    /// The caller hung up during a `<Dial>`: Twilio still requests the `action` (its TwiML
    /// cannot run any more and is ignored).
    async fn hung_up_in_dial(
        &self,
        action: Option<(String, HttpMethod)>,
        outcome: Option<DialOutcome>,
    ) {
        let (Some((url, method)), Some(outcome)) = (action, outcome) else {
            return;
        };
        let Some(mut params) = self.voice_params() else {
            return;
        };
        params.extend(dial_params(&outcome));
        let out = Outgoing {
            account_sid: self.account.clone(),
            url,
            method,
            params,
            kind: "action",
        };
        let _ = callbacks::send(&self.sim, &out).await;
    }
}

/// `DialCallStatus`, `DialCallSid`, `DialCallDuration`.
fn dial_params(outcome: &DialOutcome) -> Vec<(String, String)> {
    let mut params = vec![(
        "DialCallStatus".to_owned(),
        outcome.status.as_str().to_owned(),
    )];
    if let Some(child) = &outcome.child {
        params.push(("DialCallSid".to_owned(), child.clone()));
    }
    params.push(("DialCallDuration".to_owned(), outcome.duration.to_string()));
    params
}

/// `target` made absolute against `base` (the current document's URL); only http(s).
pub(crate) fn resolve(base: Option<&str>, target: &str) -> Option<String> {
    let target = target.trim();
    if crate::util::is_http_url(target) {
        return Some(target.to_owned());
    }
    let joined = url::Url::parse(base?).ok()?.join(target).ok()?;
    matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ring_out_by_their_last_digits() {
        assert_eq!(
            ring_plan("+14155550002", 60.0, 2.0),
            (Some(CallStatus::Busy), 2.0)
        );
        assert_eq!(
            ring_plan("+14155550003", 60.0, 2.0),
            (Some(CallStatus::NoAnswer), 4.0)
        );
        assert_eq!(
            ring_plan("+14155550003", 3.0, 2.0),
            (Some(CallStatus::NoAnswer), 3.0)
        );
        assert_eq!(
            ring_plan("+14155550004", 60.0, 2.0),
            (Some(CallStatus::Failed), 2.0)
        );
        assert_eq!(ring_plan("+14155550123", 60.0, 2.0), (None, 2.0));
        assert_eq!(ring_plan("client:agent_0002", 60.0, 2.0), (None, 2.0));
        assert_eq!(
            ring_plan("+14155550123", 1.0, 2.0),
            (Some(CallStatus::NoAnswer), 1.0)
        );
        assert_eq!(
            ring_plan("555-0123", 30.0, 2.0),
            (Some(CallStatus::Failed), 0.0)
        );
    }

    #[test]
    fn relative_urls_resolve_against_the_document() {
        assert_eq!(
            resolve(Some("http://127.0.0.1:9/voice?x=1"), "/action?y=2").as_deref(),
            Some("http://127.0.0.1:9/action?y=2")
        );
        assert_eq!(
            resolve(Some("http://127.0.0.1:9/a/voice"), "next").as_deref(),
            Some("http://127.0.0.1:9/a/next")
        );
        assert_eq!(resolve(None, "next"), None);
        assert_eq!(
            resolve(None, "https://example.com/x").as_deref(),
            Some("https://example.com/x")
        );
    }
}
