//! Request bodies: the app's shapes and the guide's, validated into engine inputs.

use serde::{Deserialize, Serialize};
use vocelio_shared::validate::{Violations, is_tag};
use vocelio_shared::{ApiResult, clock, ids, phone};

use crate::engine::NewTransfer;
use crate::model::{Call, CallStatus, Direction, TransferType, Urgency};

/// `POST /api/calls/transfer`, as the Live Call Monitor sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppTransferRequest {
    pub call_id: String,
    /// A department id (the app's select) or name.
    pub target_department: String,
    #[serde(default)]
    pub transfer_type: TransferType,
    #[serde(default)]
    pub transfer_reason: Option<String>,
    #[serde(default)]
    pub urgency_level: Urgency,
    #[serde(default)]
    pub context_summary: Option<String>,
    #[serde(default)]
    pub required_skills: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
}

/// `POST /transfer/request`, the guide's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuideTransferRequest {
    pub call_id: String,
    pub department: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub from_number: Option<String>,
    #[serde(default, alias = "urgency_level")]
    pub priority: Option<Urgency>,
    #[serde(default)]
    pub transfer_type: Option<TransferType>,
    #[serde(default, alias = "skills_required")]
    pub required_skills: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Free-form data about the caller, kept with the context.
    #[serde(default)]
    pub customer_info: Option<serde_json::Value>,
}

impl From<GuideTransferRequest> for AppTransferRequest {
    fn from(g: GuideTransferRequest) -> Self {
        let context = match (g.context, g.customer_info) {
            (Some(c), Some(info)) => Some(format!("{c}\ncustomer: {info}")),
            (Some(c), None) => Some(c),
            (None, Some(info)) => Some(format!("customer: {info}")),
            (None, None) => None,
        };
        Self {
            call_id: g.call_id,
            target_department: g.department,
            transfer_type: g.transfer_type.unwrap_or_default(),
            transfer_reason: g.reason,
            urgency_level: g.priority.unwrap_or_default(),
            context_summary: context,
            required_skills: g.required_skills,
            language: g.language,
        }
    }
}

impl AppTransferRequest {
    /// Checks every field and builds the engine's input.
    pub fn validate(&self) -> ApiResult<NewTransfer> {
        let mut v = Violations::new();
        v.check(
            ids::is_key_safe(self.call_id.trim()),
            "call_id",
            "must be a call id",
        );
        v.check(
            !self.target_department.trim().is_empty(),
            "target_department",
            "must name a department",
        );
        let reason = self
            .transfer_reason
            .as_ref()
            .map(|r| v.text("transfer_reason", r, 0, 500));
        let context = self
            .context_summary
            .as_ref()
            .map(|c| v.text("context_summary", c, 0, 4000));
        let skills = v.tags("required_skills", &self.required_skills, 20);
        let language = self.language.as_ref().map(|l| l.trim().to_lowercase());
        if let Some(l) = &language {
            v.check(
                is_tag(l),
                "language",
                "must be a short language tag such as en or es",
            );
        }
        v.finish()?;
        Ok(NewTransfer {
            call_id: self.call_id.trim().to_owned(),
            department: self.target_department.trim().to_owned(),
            transfer_type: self.transfer_type,
            transfer_reason: reason.filter(|r| !r.is_empty()),
            urgency_level: self.urgency_level,
            context_summary: context.filter(|c| !c.is_empty()),
            required_skills: skills,
            language,
        })
    }
}

/// `POST /api/calls`: the voice agent registers a call it is handling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCall {
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
    pub caller_number: String,
    #[serde(default)]
    pub called_number: Option<String>,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub current_flow: Option<String>,
    #[serde(default)]
    pub status: Option<CallStatus>,
}

impl CreateCall {
    /// Validates and builds the call, starting now.
    pub fn into_call(self, region: phone::Region, now: time::OffsetDateTime) -> ApiResult<Call> {
        let mut v = Violations::new();
        let call_id = self
            .call_id
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|| ids::new_id("call"));
        v.check(
            ids::is_key_safe(&call_id),
            "call_id",
            "must be 1-128 of letters, digits, '.', '_', '@', ':' and '-'",
        );
        let caller = phone::normalize(&self.caller_number, region);
        if let Err(e) = &caller {
            v.add("caller_number", e.to_string());
        }
        let called = self
            .called_number
            .as_deref()
            .map(|n| phone::normalize(n, region));
        if let Some(Err(e)) = &called {
            v.add("called_number", e.to_string());
        }
        let flow = self
            .current_flow
            .as_ref()
            .map(|f| v.text("current_flow", f, 1, 128));
        if let Some(sid) = &self.call_sid {
            v.check(
                ids::is_key_safe(sid),
                "call_sid",
                "must be a Twilio call SID",
            );
        }
        let status = self.status.unwrap_or(CallStatus::Active);
        v.check(
            matches!(status, CallStatus::Ringing | CallStatus::Active),
            "status",
            "a new call is ringing or active",
        );
        v.finish()?;
        let mut call = Call::new(
            call_id,
            caller.map(|c| c.as_str().to_owned()).unwrap_or_default(),
            self.direction.unwrap_or(Direction::Inbound),
            status,
            &clock::rfc3339(now),
        );
        call.call_sid = self.call_sid;
        call.called_number = called.and_then(Result::ok).map(|c| c.as_str().to_owned());
        call.current_flow = flow;
        Ok(call)
    }
}

/// `PATCH /api/calls/{call_id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCall {
    #[serde(default)]
    pub status: Option<CallStatus>,
    #[serde(default)]
    pub current_flow: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
    #[serde(default)]
    pub duration: Option<u64>,
    #[serde(default)]
    pub ai_minutes: Option<f64>,
    #[serde(default)]
    pub transfer_minutes: Option<f64>,
    #[serde(default)]
    pub cost_ai: Option<f64>,
    #[serde(default)]
    pub cost_human: Option<f64>,
}

impl UpdateCall {
    /// Checks the fields on their own (transitions are checked against the call).
    pub fn check(&self) -> ApiResult<()> {
        let mut v = Violations::new();
        if let Some(flow) = &self.current_flow {
            v.text("current_flow", flow, 1, 128);
        }
        if let Some(sid) = &self.call_sid {
            v.check(
                ids::is_key_safe(sid),
                "call_sid",
                "must be a Twilio call SID",
            );
        }
        for (name, value) in [
            ("ai_minutes", self.ai_minutes),
            ("transfer_minutes", self.transfer_minutes),
            ("cost_ai", self.cost_ai),
            ("cost_human", self.cost_human),
        ] {
            if let Some(x) = value {
                v.check(
                    x.is_finite() && (0.0..=1_000_000.0).contains(&x),
                    name,
                    "must be a number from 0 to 1000000",
                );
            }
        }
        if let Some(d) = self.duration {
            v.check(
                d <= 7 * 24 * 3600,
                "duration",
                "must be at most a week of seconds",
            );
        }
        let nothing = self.status.is_none()
            && self.current_flow.is_none()
            && self.call_sid.is_none()
            && self.duration.is_none()
            && self.ai_minutes.is_none()
            && self.transfer_minutes.is_none()
            && self.cost_ai.is_none()
            && self.cost_human.is_none();
        v.check(!nothing, "body", "must change at least one field");
        v.finish()
    }
}

/// A reporting period from `from`/`to` (RFC 3339; `to` defaults to now, `from` to
/// `default_days` before `to`), running forwards and spanning at most 90 days.
pub fn period(
    from: Option<&str>,
    to: Option<&str>,
    default_days: i64,
    now: time::OffsetDateTime,
) -> ApiResult<(time::OffsetDateTime, time::OffsetDateTime)> {
    let to = match to {
        Some(t) => crate::model::parse_time(t)
            .ok_or_else(|| vocelio_shared::ApiError::field("to", "must be an RFC 3339 time"))?,
        None => now,
    };
    let from = match from {
        Some(f) => crate::model::parse_time(f)
            .ok_or_else(|| vocelio_shared::ApiError::field("from", "must be an RFC 3339 time"))?,
        None => to - time::Duration::days(default_days),
    };
    if from > to || to - from > time::Duration::days(90) {
        return Err(vocelio_shared::ApiError::field(
            "from",
            "the range must run forwards and span at most 90 days",
        ));
    }
    Ok((from, to))
}
