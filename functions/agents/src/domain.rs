//! Agents: registration rules and status changes. Pure; no I/O.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
pub use vocelio_shared::agent::{Agent, AgentStatus};
use vocelio_shared::validate::{Violations, is_email};
use vocelio_shared::{ApiResult, AuthUser, Role, clock, ids};

/// `POST /api/agents/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    pub agent_id: String,
    pub name: String,
    pub email: String,
    /// A department id, or its name.
    pub department: String,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub performance_rating: Option<f64>,
    /// The starting status; `offline` when not given (nothing is routed to a new agent
    /// until they say they are available).
    #[serde(default)]
    pub status: Option<AgentStatus>,
}

/// `PUT /api/agents/{agent_id}/status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeStatus {
    pub status: AgentStatus,
    /// Only with `busy`: the call the agent took.
    #[serde(default)]
    pub current_call_id: Option<String>,
}

const MAX_TAGS: usize = 50;

impl RegisterAgent {
    /// Validates every field but the department (resolved against the store by the caller)
    /// and builds the agent assigned to `department_id`.
    pub fn validate(&self) -> ApiResult<()> {
        let mut v = Violations::new();
        self.check(&mut v);
        v.finish()
    }

    fn check(&self, v: &mut Violations) -> (String, String, String, Vec<String>, Vec<String>) {
        let agent_id = self.agent_id.trim().to_owned();
        v.check(
            ids::is_key_safe(&agent_id),
            "agent_id",
            "must be 1-128 characters of letters, digits, '.', '_', '@', ':' and '-'",
        );
        let name = v.text("name", &self.name, 1, 255);
        let email = self.email.trim().to_lowercase();
        v.check(is_email(&email), "email", "must be a valid email address");
        v.check(
            !self.department.trim().is_empty(),
            "department",
            "must name a department (its id or name)",
        );
        let skills = v.tags("skills", &self.skills, MAX_TAGS);
        let languages = v.tags("languages", &self.languages, MAX_TAGS);
        if let Some(rating) = self.performance_rating {
            v.check(
                rating.is_finite() && (0.0..=5.0).contains(&rating),
                "performance_rating",
                "must be a number from 0 to 5",
            );
        }
        if self.status == Some(AgentStatus::Busy) {
            v.add(
                "status",
                "a new agent cannot start busy: set busy with a call through the status endpoint",
            );
        }
        (agent_id, name, email, skills, languages)
    }

    /// The new agent, in `department_id`, at `now`.
    pub fn into_agent(self, department_id: String, now: OffsetDateTime) -> ApiResult<Agent> {
        let mut v = Violations::new();
        let (agent_id, name, email, skills, languages) = self.check(&mut v);
        v.finish()?;
        let at = clock::rfc3339(now);
        Ok(Agent {
            agent_id,
            name,
            email,
            department: department_id,
            skills,
            languages,
            performance_rating: self.performance_rating,
            status: self.status.unwrap_or(AgentStatus::Offline),
            current_call_id: None,
            current_transfer_id: None,
            wrap_up_until: None,
            last_activity: at.clone(),
            created_at: at.clone(),
            updated_at: at,
            version: 0,
        })
    }
}

/// May `user` change the status of `agent_id`? Agents only their own; supervisors and
/// admins anyone's in their tenant (the tenant is already fixed by the key).
pub fn may_change_status(user: &AuthUser, agent_id: &str) -> bool {
    match user.role {
        Role::Admin | Role::Supervisor => true,
        Role::Agent => user.user_id == agent_id,
        Role::Viewer => false,
    }
}

impl ChangeStatus {
    /// Applies the change to `agent` at `now`: `last_activity` moves, `current_call_id` is
    /// kept only while busy.
    pub fn apply(self, agent: &Agent, now: OffsetDateTime) -> ApiResult<Agent> {
        if let Some(transfer_id) = &agent.current_transfer_id
            && self.status != AgentStatus::Busy
        {
            return Err(vocelio_shared::ApiError::Conflict {
                code: "agent_holds_transfer",
                message: format!(
                    "the agent holds transfer {transfer_id}: accept and complete, decline, or cancel it first"
                ),
                current: serde_json::to_value(agent).ok(),
            });
        }
        let mut v = Violations::new();
        let call_id = self.current_call_id.map(|c| c.trim().to_owned());
        if let Some(call_id) = &call_id {
            v.check(
                self.status == AgentStatus::Busy,
                "current_call_id",
                "may be set only with status busy",
            );
            v.check(
                ids::is_key_safe(call_id),
                "current_call_id",
                "must be a call id",
            );
        }
        v.finish()?;
        let at = clock::rfc3339(now);
        let current_call_id = match self.status {
            AgentStatus::Busy => call_id.or_else(|| agent.current_call_id.clone()),
            _ => None,
        };
        Ok(Agent {
            status: self.status,
            current_call_id,
            current_transfer_id: agent.current_transfer_id.clone(),
            wrap_up_until: None,
            last_activity: at.clone(),
            updated_at: at,
            version: agent.version + 1,
            ..agent.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use vocelio_shared::ids::TenantId;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn register(json: serde_json::Value) -> RegisterAgent {
        serde_json::from_value(json).unwrap()
    }

    fn fields(err: vocelio_shared::ApiError) -> Vec<String> {
        err.body()["details"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn registration_normalises_tags_and_starts_offline() {
        let agent = register(serde_json::json!({
            "agent_id": "ana", "name": "Ana Ruiz", "email": "Ana@Example.com", "department": "Sales",
            "skills": ["Billing", "billing", "refunds"], "languages": ["EN", "es"], "performance_rating": 4.5
        }))
        .into_agent("dept_x".into(), NOW)
        .unwrap();
        assert_eq!(agent.skills, vec!["billing", "refunds"]);
        assert_eq!(agent.languages, vec!["en", "es"]);
        assert_eq!(agent.email, "ana@example.com");
        assert_eq!(agent.status, AgentStatus::Offline);
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = register(serde_json::json!({
            "agent_id": "ana#1", "name": "", "email": "nope", "department": " ",
            "skills": ["has space"], "performance_rating": 7
        }))
        .validate()
        .unwrap_err();
        assert_eq!(
            fields(err),
            vec![
                "agent_id",
                "name",
                "email",
                "department",
                "skills[0]",
                "performance_rating"
            ]
        );
    }

    #[test]
    fn status_changes_keep_the_call_only_while_busy() {
        let agent = register(
            serde_json::json!({"agent_id": "a", "name": "A", "email": "a@b.co", "department": "d"}),
        )
        .into_agent("dept_x".into(), NOW)
        .unwrap();
        let busy = ChangeStatus {
            status: AgentStatus::Busy,
            current_call_id: Some("call_1".into()),
        }
        .apply(&agent, NOW)
        .unwrap();
        assert_eq!(busy.current_call_id.as_deref(), Some("call_1"));
        let wrap = ChangeStatus {
            status: AgentStatus::WrapUp,
            current_call_id: None,
        }
        .apply(&busy, NOW)
        .unwrap();
        assert_eq!(wrap.current_call_id, None);
        let err = ChangeStatus {
            status: AgentStatus::Available,
            current_call_id: Some("call_1".into()),
        }
        .apply(&agent, NOW)
        .unwrap_err();
        assert_eq!(fields(err), vec!["current_call_id"]);
    }

    #[test]
    fn agents_change_only_their_own_status() {
        let user = |role, id: &str| AuthUser {
            user_id: id.into(),
            tenant: TenantId::parse("t").unwrap(),
            role,
            scopes: None,
        };
        assert!(may_change_status(&user(Role::Agent, "ana"), "ana"));
        assert!(!may_change_status(&user(Role::Agent, "ana"), "bob"));
        assert!(may_change_status(&user(Role::Supervisor, "sue"), "bob"));
    }
}
