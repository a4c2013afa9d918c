//! Twilio status callbacks: the form Twilio posts, and the rules that apply them — ordered by
//! `SequenceNumber`, deduplicated by `(CallSid, CallStatus)`, and never moving a call
//! backwards (a late `ringing` after `in-progress` is ignored; an ended call stays ended).

/// A call's status as Twilio names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    /// Parses Twilio's `CallStatus` / `DialCallStatus` value.
    pub fn parse(value: &str) -> Option<CallStatus> {
        Some(match value {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" | "answered" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "no-answer" => CallStatus::NoAnswer,
            "failed" => CallStatus::Failed,
            "canceled" => CallStatus::Canceled,
            _ => return None,
        })
    }

    /// Twilio's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Canceled
        )
    }

    /// Progress rank: a status may only replace one of lower rank.
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Initiated => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            _ => 4,
        }
    }
}

/// One status callback, as Twilio form-encodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCallback {
    pub call_sid: String,
    pub account_sid: String,
    pub status: CallStatus,
    pub sequence_number: Option<u32>,
    pub timestamp: Option<String>,
    pub call_duration_seconds: Option<u32>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub direction: Option<String>,
    pub parent_call_sid: Option<String>,
    /// `Price` (negative, in `PriceUnit`) when Twilio sends it.
    pub price: Option<f64>,
    pub price_unit: Option<String>,
}

impl StatusCallback {
    /// A report of `status` for `call_sid` of `account_sid` with nothing else known (what
    /// the reconciler reads back from Twilio).
    pub fn bare(call_sid: &str, account_sid: &str, status: CallStatus) -> Self {
        Self {
            call_sid: call_sid.to_owned(),
            account_sid: account_sid.to_owned(),
            status,
            sequence_number: None,
            timestamp: None,
            call_duration_seconds: None,
            from: None,
            to: None,
            direction: None,
            parent_call_sid: None,
            price: None,
            price_unit: None,
        }
    }
}

/// Why a callback form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {0} is malformed")]
    Malformed(&'static str),
}

/// Whether `value` has the shape of a Twilio SID with `prefix` (`CA`, `AC`, ...).
pub fn is_sid(prefix: &str, value: &str) -> bool {
    value.len() == 34
        && value.starts_with(prefix)
        && value[2..].chars().all(|c| c.is_ascii_hexdigit())
}

impl StatusCallback {
    /// Reads the callback from form pairs.
    pub fn from_form(pairs: &[(String, String)]) -> Result<Self, CallbackError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let call_sid = get("CallSid").ok_or(CallbackError::Missing("CallSid"))?;
        if !is_sid("CA", &call_sid) {
            return Err(CallbackError::Malformed("CallSid"));
        }
        let account_sid = get("AccountSid").ok_or(CallbackError::Missing("AccountSid"))?;
        if !is_sid("AC", &account_sid) {
            return Err(CallbackError::Malformed("AccountSid"));
        }
        let status = get("CallStatus").ok_or(CallbackError::Missing("CallStatus"))?;
        let status = CallStatus::parse(&status).ok_or(CallbackError::Malformed("CallStatus"))?;
        let number = |name: &'static str| -> Result<Option<u32>, CallbackError> {
            get(name)
                .map(|v| v.parse().map_err(|_| CallbackError::Malformed(name)))
                .transpose()
        };
        Ok(Self {
            call_sid,
            account_sid,
            status,
            sequence_number: number("SequenceNumber")?,
            timestamp: get("Timestamp"),
            call_duration_seconds: number("CallDuration")?,
            from: get("From"),
            to: get("To"),
            direction: get("Direction"),
            parent_call_sid: get("ParentCallSid"),
            price: get("Price").and_then(|p| p.parse().ok()),
            price_unit: get("PriceUnit"),
        })
    }
}

/// What we know of a call when a callback arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub status: CallStatus,
    /// The highest `SequenceNumber` applied so far.
    pub last_sequence: Option<u32>,
}

/// What to do with a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it: the call moves to this status.
    Apply,
    /// Same status again (a retry or a duplicate): nothing to do.
    Duplicate,
    /// Older than what we have (lower sequence or lower rank): nothing to do.
    Stale,
}

/// Decides whether `incoming` moves a call in state `known` forward.
pub fn judge(known: &Known, incoming: &StatusCallback) -> Verdict {
    if known.status == incoming.status {
        return Verdict::Duplicate;
    }
    if let (Some(last), Some(seq)) = (known.last_sequence, incoming.sequence_number)
        && seq <= last
    {
        return Verdict::Stale;
    }
    if known.status.is_final() || incoming.status.rank() < known.status.rank() {
        return Verdict::Stale;
    }
    Verdict::Apply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(status: &str, seq: u32) -> StatusCallback {
        let pairs: Vec<(String, String)> = [
            ("CallSid", "CA0123456789abcdef0123456789abcdef"),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("CallStatus", status),
            ("SequenceNumber", &seq.to_string()),
            ("CallDuration", "42"),
            ("Price", "-0.0130"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        StatusCallback::from_form(&pairs).expect("valid")
    }

    #[test]
    fn callbacks_parse_from_twilios_form() {
        let c = callback("completed", 3);
        assert_eq!(c.status, CallStatus::Completed);
        assert_eq!(c.call_duration_seconds, Some(42));
        assert_eq!(c.price, Some(-0.013));
        let missing = StatusCallback::from_form(&[("CallStatus".into(), "ringing".into())]);
        assert_eq!(missing, Err(CallbackError::Missing("CallSid")));
        let forged = StatusCallback::from_form(&[
            ("CallSid".into(), "CA#TENANT#other".into()),
            (
                "AccountSid".into(),
                "AC0123456789abcdef0123456789abcdef".into(),
            ),
            ("CallStatus".into(), "completed".into()),
        ]);
        assert_eq!(forged, Err(CallbackError::Malformed("CallSid")));
    }

    #[test]
    fn a_call_never_moves_backwards_nor_counts_twice() {
        let ringing = Known {
            status: CallStatus::Ringing,
            last_sequence: Some(1),
        };
        assert_eq!(judge(&ringing, &callback("in-progress", 2)), Verdict::Apply);
        assert_eq!(judge(&ringing, &callback("ringing", 1)), Verdict::Duplicate);
        assert_eq!(judge(&ringing, &callback("initiated", 0)), Verdict::Stale);
        let live = Known {
            status: CallStatus::InProgress,
            last_sequence: None,
        };
        // Without sequence numbers (dial-action callbacks), rank decides.
        let mut late = callback("ringing", 0);
        late.sequence_number = None;
        assert_eq!(judge(&live, &late), Verdict::Stale);
        let ended = Known {
            status: CallStatus::Completed,
            last_sequence: Some(3),
        };
        assert_eq!(judge(&ended, &callback("completed", 3)), Verdict::Duplicate);
        assert_eq!(judge(&ended, &callback("failed", 4)), Verdict::Stale);
        // A completed arriving before ringing still ends the call.
        let queued = Known {
            status: CallStatus::Queued,
            last_sequence: None,
        };
        assert_eq!(judge(&queued, &callback("completed", 3)), Verdict::Apply);
    }
}
