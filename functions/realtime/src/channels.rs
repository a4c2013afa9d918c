//! WebSocket channels, filters, client messages and who may subscribe to what. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::log::LogEvent;

/// What a connection can subscribe to; every event of the log belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Transfer requests: initiated, assigned, queued, accepted, declined, completed, ...
    Transfers,
    /// Agents: registered, deregistered, status changes.
    Agents,
    /// Department queues: a caller entered, left or moved.
    Queues,
    /// Calls: registered, status changes, ended.
    Calls,
    /// Departments: created, updated, deactivated (admins and supervisors).
    Departments,
    /// Contacts, lists, do-not-call lists and import progress (`contact_*`, `dnc_*`,
    /// `import_*`; admins and supervisors).
    Contacts,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 6] = [
        Channel::Transfers,
        Channel::Agents,
        Channel::Queues,
        Channel::Calls,
        Channel::Departments,
        Channel::Contacts,
    ];

    /// The name clients use.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Transfers => "transfers",
            Channel::Agents => "agents",
            Channel::Queues => "queues",
            Channel::Calls => "calls",
            Channel::Departments => "departments",
            Channel::Contacts => "contacts",
        }
    }

    /// The channel an event of `event_type` is delivered on, if any.
    pub fn of_event(event_type: &str) -> Option<Channel> {
        let (prefix, _) = event_type.split_once('_')?;
        match prefix {
            "transfer" => Some(Channel::Transfers),
            "agent" => Some(Channel::Agents),
            "queue" => Some(Channel::Queues),
            "call" => Some(Channel::Calls),
            "department" => Some(Channel::Departments),
            "contact" | "dnc" | "import" => Some(Channel::Contacts),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown channel {s:?}; use one of transfers, agents, queues, calls, departments, contacts"
                )
            })
    }
}

/// What narrows a subscription: every filter given must match the event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// A department id (or its name, as `target_department` carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// An agent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// A call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.department.is_none() && self.agent_id.is_none() && self.call_id.is_none()
    }

    fn bounded(&self) -> Result<(), String> {
        for (name, value) in [
            ("department", &self.department),
            ("agent_id", &self.agent_id),
            ("call_id", &self.call_id),
        ] {
            if let Some(v) = value
                && (v.trim().is_empty() || v.len() > 128)
            {
                return Err(format!("filters.{name} must be 1 to 128 characters"));
            }
        }
        Ok(())
    }
}

/// The departments, agent and call an event concerns, read from its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    /// Department ids and names.
    pub departments: Vec<String>,
    /// Agent ids.
    pub agents: Vec<String>,
    /// The call id.
    pub call: Option<String>,
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// What `event` concerns. Payloads are the records the functions write: transfers carry
/// `department_id`, `target_department`, `agent_id`, `call_id`; agent events the agent (at
/// the top or under `agent`); calls `call_id` and the call under `call`; departments the
/// department record.
pub fn facets(event: &LogEvent) -> Facets {
    let d = &event.data;
    let mut facets = Facets::default();
    let mut department = |v: Option<String>| {
        if let Some(v) = v
            && !facets.departments.contains(&v)
        {
            facets.departments.push(v);
        }
    };
    department(text(d, "/department_id"));
    department(text(d, "/target_department"));
    department(text(d, "/agent/department"));
    department(text(d, "/call/current_department"));
    if event.event_type.starts_with("agent_") {
        department(text(d, "/department"));
    }
    if event.event_type.starts_with("department_") {
        department(text(d, "/id"));
        department(text(d, "/name"));
    }
    for agent in [
        text(d, "/agent_id"),
        text(d, "/agent/agent_id"),
        text(d, "/call/assigned_agent"),
    ]
    .into_iter()
    .flatten()
    {
        if !facets.agents.contains(&agent) {
            facets.agents.push(agent);
        }
    }
    facets.call = text(d, "/call_id").or_else(|| text(d, "/agent/current_call_id"));
    facets
}

/// Whether an event with `facets` passes `filters`.
pub fn matches(filters: &Filters, facets: &Facets) -> bool {
    let department = filters
        .department
        .as_ref()
        .is_none_or(|want| facets.departments.iter().any(|d| d == want));
    let agent = filters
        .agent_id
        .as_ref()
        .is_none_or(|want| facets.agents.iter().any(|a| a == want));
    let call = filters
        .call_id
        .as_ref()
        .is_none_or(|want| facets.call.as_deref() == Some(want));
    department && agent && call
}

/// A message from a client, in our form (`action`) or the guide's (`type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Start receiving `channel`'s events that pass `filters` (replaces an earlier
    /// subscription to the same channel).
    Subscribe { channel: Channel, filters: Filters },
    /// Stop receiving `channel`.
    Unsubscribe { channel: Channel },
    /// Liveness check; answered with `pong`.
    Ping,
}

/// Why a client message was refused: the `code` and sentence of the error frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Machine code: `invalid_json`, `invalid_message`, `unknown_action`, `forbidden`, ...
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The error frame sent back on the socket.
    pub fn frame(&self) -> Value {
        json!({"type": "error", "code": self.code, "error": self.message})
    }
}

/// The largest client message read (API Gateway's frame limit is 32 KB).
pub const MAX_CLIENT_MESSAGE: usize = 32 * 1024;

/// Parses one client frame.
pub fn parse_client_message(body: &str) -> Result<ClientMessage, Refusal> {
    if body.len() > MAX_CLIENT_MESSAGE {
        return Err(Refusal::new(
            "message_too_large",
            "messages are limited to 32 KB",
        ));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| {
        Refusal::new(
            "invalid_json",
            format!("the message is not valid JSON: {e}"),
        )
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| Refusal::new("invalid_message", "send a JSON object"))?;
    let action = object
        .get("action")
        .or_else(|| object.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Refusal::new(
                "invalid_message",
                "the message needs an action: subscribe, unsubscribe or ping",
            )
        })?;
    let channel = || -> Result<Channel, Refusal> {
        let name = object
            .get("channel")
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::new("invalid_message", "channel is required"))?;
        name.parse()
            .map_err(|e: String| Refusal::new("unknown_channel", e))
    };
    match action {
        "subscribe" => {
            let channel = channel()?;
            let filters = match object.get("filters") {
                None | Some(Value::Null) => Filters::default(),
                Some(raw) => serde_json::from_value::<Filters>(raw.clone()).map_err(|e| {
                    Refusal::new(
                        "invalid_filters",
                        format!("filters may hold department, agent_id and call_id: {e}"),
                    )
                })?,
            };
            filters
                .bounded()
                .map_err(|e| Refusal::new("invalid_filters", e))?;
            Ok(ClientMessage::Subscribe { channel, filters })
        }
        "unsubscribe" => Ok(ClientMessage::Unsubscribe {
            channel: channel()?,
        }),
        "ping" => Ok(ClientMessage::Ping),
        other => Err(Refusal::new(
            "unknown_action",
            format!("unknown action {other:?}; use subscribe, unsubscribe or ping"),
        )),
    }
}

/// Who a subscriber is, as far as authorization goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The token's role.
    pub role: Role,
    /// The token's subject (an agent's id).
    pub user_id: String,
    /// The agent's department (agents only; none when they are not registered).
    pub department: Option<String>,
}

/// Whether `subscriber` may receive `channel` with `filters`. Admins and supervisors see
/// their whole tenant; an agent sees only their own agent channel and their department.
pub fn authorize(
    subscriber: &Subscriber,
    channel: Channel,
    filters: &Filters,
) -> Result<(), Refusal> {
    if subscriber.role != Role::Agent {
        return Ok(());
    }
    let own_agent = filters.agent_id.as_deref() == Some(subscriber.user_id.as_str());
    let own_department = filters.department.is_some()
        && filters.department.as_deref() == subscriber.department.as_deref();
    let allowed = match channel {
        Channel::Agents => own_agent || own_department,
        Channel::Transfers | Channel::Queues | Channel::Calls => own_agent || own_department,
        Channel::Departments | Channel::Contacts => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal::new(
            "forbidden",
            format!(
                "agents may subscribe to {channel} only with filters.agent_id set to their own id or filters.department set to their department"
            ),
        ))
    }
}

/// The message a subscriber receives for `event` on `channel`.
pub fn event_frame(event: &LogEvent, channel: Channel) -> Value {
    json!({
        "type": event.event_type,
        "channel": channel.as_str(),
        "data": event.data,
        "id": event.event_id,
        "at": event.at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::log::sample_event as event;

    #[test]
    fn every_event_type_has_a_channel() {
        for kind in [
            "transfer_initiated",
            "transfer_queued",
            "agent_status_changed",
            "queue_updated",
            "call_ended",
            "call_status_update",
            "department_created",
            "contact_created",
            "import_progress",
            "dnc_list_updated",
        ] {
            assert!(Channel::of_event(kind).is_some(), "{kind}");
        }
        assert_eq!(Channel::of_event("queue_updated"), Some(Channel::Queues));
        assert_eq!(Channel::of_event("nonsense"), None);
    }

    #[test]
    fn filters_match_on_what_the_event_concerns() {
        let transfer = event(
            "transfer_assigned",
            json!({"transfer_id": "t", "call_id": "c1", "department_id": "d1", "target_department": "Sales", "agent_id": "ana"}),
        );
        let f = facets(&transfer);
        assert!(matches(&Filters::default(), &f));
        let by = |department: Option<&str>, agent: Option<&str>, call: Option<&str>| Filters {
            department: department.map(Into::into),
            agent_id: agent.map(Into::into),
            call_id: call.map(Into::into),
        };
        assert!(matches(&by(Some("d1"), None, None), &f));
        assert!(matches(&by(Some("Sales"), None, None), &f));
        assert!(!matches(&by(Some("d2"), None, None), &f));
        assert!(matches(&by(Some("d1"), Some("ana"), Some("c1")), &f));
        assert!(!matches(&by(Some("d1"), Some("bob"), None), &f));
        let status = event(
            "agent_status_changed",
            json!({"agent": {"agent_id": "bob", "department": "d2", "current_call_id": null}}),
        );
        let f = facets(&status);
        assert!(matches(&by(Some("d2"), Some("bob"), None), &f));
        assert!(!matches(&by(None, None, Some("c1")), &f));
    }

    #[test]
    fn both_message_forms_parse_and_bad_ones_are_refused_with_a_code() {
        assert_eq!(
            parse_client_message(
                r#"{"action":"subscribe","channel":"transfers","filters":{"department":"d1"}}"#
            ),
            Ok(ClientMessage::Subscribe {
                channel: Channel::Transfers,
                filters: Filters {
                    department: Some("d1".into()),
                    ..Filters::default()
                }
            })
        );
        assert_eq!(
            parse_client_message(r#"{"type":"unsubscribe","channel":"agents"}"#),
            Ok(ClientMessage::Unsubscribe {
                channel: Channel::Agents
            })
        );
        assert_eq!(
            parse_client_message(r#"{"action":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
        let code = |body: &str| parse_client_message(body).unwrap_err().code;
        assert_eq!(code("{not json"), "invalid_json");
        assert_eq!(code("[1]"), "invalid_message");
        assert_eq!(code(r#"{"action":"dance"}"#), "unknown_action");
        assert_eq!(
            code(r#"{"action":"subscribe","channel":"gossip"}"#),
            "unknown_channel"
        );
        assert_eq!(
            code(r#"{"action":"subscribe","channel":"calls","filters":{"colour":"red"}}"#),
            "invalid_filters"
        );
        assert_eq!(code(&"x".repeat(40_000)), "message_too_large");
    }

    #[test]
    fn agents_see_only_themselves_and_their_department() {
        let agent = Subscriber {
            role: Role::Agent,
            user_id: "ana".into(),
            department: Some("d1".into()),
        };
        let with = |department: Option<&str>, agent_id: Option<&str>| Filters {
            department: department.map(Into::into),
            agent_id: agent_id.map(Into::into),
            call_id: None,
        };
        assert!(authorize(&agent, Channel::Agents, &with(None, Some("ana"))).is_ok());
        assert!(authorize(&agent, Channel::Transfers, &with(Some("d1"), None)).is_ok());
        assert!(authorize(&agent, Channel::Transfers, &with(None, None)).is_err());
        assert!(authorize(&agent, Channel::Agents, &with(None, Some("bob"))).is_err());
        assert!(authorize(&agent, Channel::Queues, &with(Some("d2"), None)).is_err());
        assert!(authorize(&agent, Channel::Departments, &with(Some("d1"), None)).is_err());
        let supervisor = Subscriber {
            role: Role::Supervisor,
            user_id: "sue".into(),
            department: None,
        };
        assert!(authorize(&supervisor, Channel::Transfers, &Filters::default()).is_ok());
    }
}
