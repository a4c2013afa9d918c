//! What the app's `EventSource` handlers parse: one flat JSON object with `type`, built from a
//! domain event of the log. Pure.

use serde_json::{Value, json};

use crate::log::LogEvent;

/// The call an event concerns, if any.
pub fn call_of(event: &LogEvent) -> Option<&str> {
    event.data.get("call_id").and_then(Value::as_str)
}

/// The flat message for a call's own stream (`/api/calls/{call_id}/events`), or none for
/// events that do not concern calls.
pub fn call_message(event: &LogEvent) -> Option<Value> {
    let d = &event.data;
    let timestamp = d
        .get("timestamp")
        .cloned()
        .unwrap_or_else(|| json!(event.at));
    let call_id = call_of(event)?;
    let message = match event.event_type.as_str() {
        "call_status_update" => json!({
            "type": "call_status_update", "call_id": call_id, "status": d["status"], "duration": d["duration"], "timestamp": timestamp,
        }),
        "call_ended" => json!({
            "type": "call_ended", "call_id": call_id, "status": d["status"], "total_duration": d["total_duration"], "timestamp": timestamp,
        }),
        "transfer_initiated" => json!({
            "type": "transfer_initiated", "call_id": call_id, "transfer_id": d["transfer_id"],
            "target_department": d["target_department"], "transfer_type": d["transfer_type"], "timestamp": timestamp,
        }),
        "transfer_completed" => json!({
            "type": "transfer_completed", "call_id": call_id, "transfer_id": d["transfer_id"],
            "target_department": d["target_department"], "agent_id": d["agent_id"], "timestamp": timestamp,
        }),
        "transfer_failed" => json!({
            "type": "transfer_failed", "call_id": call_id, "transfer_id": d["transfer_id"],
            "error_message": d.get("error_message").cloned().unwrap_or_else(|| json!("the transfer failed")), "timestamp": timestamp,
        }),
        kind if kind.starts_with("transfer_") => json!({
            "type": kind, "call_id": call_id, "transfer_id": d["transfer_id"], "status": d["status"],
            "agent_id": d["agent_id"], "target_department": d["target_department"], "timestamp": timestamp,
        }),
        _ => return None,
    };
    Some(message)
}

/// The `call_update` message of the active-calls stream for a call event.
pub fn call_update(event: &LogEvent) -> Option<Value> {
    let call_id = call_of(event)?;
    let message = call_message(event)?;
    let mut updates = message.as_object()?.clone();
    updates.remove("call_id");
    updates.insert("event".into(), json!(event.event_type));
    updates.remove("type");
    Some(json!({ "type": "call_update", "call_id": call_id, "updates": updates }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::log::sample_event as event;

    #[test]
    fn messages_are_the_flat_shapes_the_app_reads() {
        let initiated = event(
            "transfer_initiated",
            json!({"call_id": "c1", "transfer_id": "t1", "target_department": "Sales", "transfer_type": "warm", "timestamp": "T"}),
        );
        assert_eq!(
            call_message(&initiated).unwrap(),
            json!({"type": "transfer_initiated", "call_id": "c1", "transfer_id": "t1", "target_department": "Sales", "transfer_type": "warm", "timestamp": "T"})
        );
        let ended = event(
            "call_ended",
            json!({"call_id": "c1", "status": "completed", "total_duration": 42}),
        );
        let m = call_message(&ended).unwrap();
        assert_eq!(m["total_duration"], 42);
        assert_eq!(m["timestamp"], "2026-11-25T10:00:00.000Z");
        let update = call_update(&ended).unwrap();
        assert_eq!(update["type"], "call_update");
        assert_eq!(update["updates"]["total_duration"], 42);
        assert!(call_message(&event("department_created", json!({"id": "d"}))).is_none());
        assert!(call_message(&event("agent_status_changed", json!({"agent": {}}))).is_none());
    }
}
