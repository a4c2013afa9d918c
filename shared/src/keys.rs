//! Every key of the core table, computed by pure functions from tenant-scoped ids.
//!
//! The tenant is the first segment of every partition key, and ids that go into keys never
//! contain `#`, so one tenant cannot name another's items. Keys are never stored on domain
//! structs: repositories add them when writing and ignore them when reading.

use crate::ids::TenantId;

/// Partition key attribute.
pub const PK: &str = "PK";
/// Sort key attribute.
pub const SK: &str = "SK";
/// Index 1: agents by department (and status).
pub const GSI1: &str = "GSI1";
/// Index 1 partition key attribute.
pub const GSI1PK: &str = "GSI1PK";
/// Index 1 sort key attribute.
pub const GSI1SK: &str = "GSI1SK";
/// Index 2: agents by status.
pub const GSI2: &str = "GSI2";
/// Index 2 partition key attribute.
pub const GSI2PK: &str = "GSI2PK";
/// Index 2 sort key attribute.
pub const GSI2SK: &str = "GSI2SK";
/// Index 3: timers (offer timeouts, wrap-up ends), due first.
pub const GSI3: &str = "GSI3";
/// Index 3 partition key attribute.
pub const GSI3PK: &str = "GSI3PK";
/// Index 3 sort key attribute.
pub const GSI3SK: &str = "GSI3SK";
/// The one partition of GSI3: every timer of every tenant, ordered by due time. Read only by
/// the sweeper, which acts on each item in its own tenant.
pub const TIMERS_PK: &str = "TIMERS";

/// GSI3 sort key of a timer due at `due` (RFC 3339) for an item of `tenant`.
pub fn timer_sk(due: &str, tenant: &TenantId, what: &str, id: &str) -> String {
    format!("{due}#{tenant}#{what}#{id}")
}

/// The TTL attribute (epoch seconds) of expiring items: events, idempotency records.
pub const EXPIRES_AT: &str = "expires_at";
/// The attribute that names an item's kind (`department`, `agent`, `event`, ...).
pub const ENTITY: &str = "entity";

/// The partition holding a tenant's departments and their name reservations.
pub fn departments_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#DEPT")
}

/// Sort-key prefix of department items in [`departments_pk`].
pub const DEPARTMENT_SK_PREFIX: &str = "DEPT#";

/// A department's sort key.
pub fn department_sk(department_id: &str) -> String {
    format!("{DEPARTMENT_SK_PREFIX}{department_id}")
}

/// The sort key reserving a department name (case-insensitive) in its tenant.
pub fn department_name_sk(name: &str) -> String {
    format!("NAME#{}", name.trim().to_lowercase())
}

/// The partition holding a tenant's agents.
pub fn agents_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#AGENT")
}

/// Sort-key prefix of agent items in [`agents_pk`].
pub const AGENT_SK_PREFIX: &str = "AGENT#";

/// An agent's sort key.
pub fn agent_sk(agent_id: &str) -> String {
    format!("{AGENT_SK_PREFIX}{agent_id}")
}

/// GSI1 partition of a department's agents.
pub fn agents_by_department_pk(tenant: &TenantId, department_id: &str) -> String {
    format!("TENANT#{tenant}#DEPT#{department_id}#AGENTS")
}

/// GSI1 sort key of an agent: status first, so one status is a `begins_with` query.
pub fn agents_by_department_sk(status: &str, agent_id: &str) -> String {
    format!("{status}#{agent_id}")
}

/// GSI2 partition of a tenant's agents in one status.
pub fn agents_by_status_pk(tenant: &TenantId, status: &str) -> String {
    format!("TENANT#{tenant}#AGENTS#{status}")
}

/// A call's partition (the call item).
pub fn call_pk(tenant: &TenantId, call_id: &str) -> String {
    format!("TENANT#{tenant}#CALL#{call_id}")
}

/// The sort key of call items.
pub const CALL_SK: &str = "CALL";

/// GSI1 partition of a tenant's calls in start-time order (call logs).
pub fn calls_by_time_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#CALLS")
}

/// GSI1/GSI2 sort key of a call: start time, then id.
pub fn call_time_sk(start_time: &str, call_id: &str) -> String {
    format!("{start_time}#{call_id}")
}

/// GSI2 partition of a tenant's calls that have not ended (sparse: removed at the end).
pub fn active_calls_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#ACTIVECALLS")
}

/// A transfer's partition.
pub fn transfer_pk(tenant: &TenantId, transfer_id: &str) -> String {
    format!("TENANT#{tenant}#TRANSFER#{transfer_id}")
}

/// The sort key of transfer items.
pub const TRANSFER_SK: &str = "TRANSFER";

/// GSI1 partition of a tenant's transfers in request-time order (analytics).
pub fn transfers_by_time_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#TRANSFERS")
}

/// GSI2 partition of a department's queue (sparse: only waiting transfers).
pub fn queue_pk(tenant: &TenantId, department_id: &str) -> String {
    format!("TENANT#{tenant}#QUEUE#{department_id}")
}

/// GSI2 sort key in a queue: urgency rank (0 = urgent), then request time, then id.
pub fn queue_sk(urgency_rank: u8, requested_at: &str, transfer_id: &str) -> String {
    format!("{urgency_rank}#{requested_at}#{transfer_id}")
}

/// The partition of a tenant's event log.
pub fn events_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#EVENTS")
}

/// The item remembering one `Idempotency-Key` of one operation.
pub fn idempotency_pk(tenant: &TenantId, operation: &str, key: &str) -> String {
    format!("TENANT#{tenant}#IDEM#{operation}#{key}")
}

/// The sort key of idempotency records.
pub const IDEMPOTENCY_SK: &str = "IDEM";

/// A tenant's call flows (one item each, `FLOW#<flow_id>`).
pub fn flows_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#FLOWS")
}

/// The sort key of a call flow.
pub fn flow_sk(flow_id: &str) -> String {
    format!("FLOW#{flow_id}")
}

/// The owner of a phone number (E.164): which tenant and flow answer it. Not tenant-first,
/// like [`carrier_call_pk`]: the carrier's webhook names only the number, and the item
/// carries the tenant, so a number belongs to one tenant at most.
pub fn phone_number_pk(e164: &str) -> String {
    format!("PHONENUMBER#{e164}")
}

/// The carrier's call id (a Twilio `CallSid`) → the tenant and call it belongs to. Status
/// callbacks name only the SID; the item carries the tenant.
pub fn carrier_call_pk(call_sid: &str) -> String {
    format!("CARRIER#TWILIO#CALL#{call_sid}")
}

/// The sort key of [`phone_number_pk`] and [`carrier_call_pk`] items.
pub const OWNER_SK: &str = "OWNER";

/// The marker of one carrier leg of a transfer (`caller`, or an agent id): written once,
/// so a redelivered event never dials twice.
pub fn transfer_leg_sk(who: &str) -> String {
    format!("LEG#{who}")
}

/// A tenant's do-not-call registry entry for one number (E.164): which DNC lists hold it.
/// One GetItem answers "may we call this number?".
pub fn dnc_number_pk(tenant: &TenantId, e164: &str) -> String {
    format!("TENANT#{tenant}#DNC#{e164}")
}

/// A tenant's telephony settings and state: `ACCOUNT` (its Twilio subaccount), `POLICY`
/// (its dialling rules), `RATE#<minute>` and `MINUTES#<day>` (its quotas' counters).
pub fn telephony_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#TELEPHONY")
}

/// The numbers a tenant owns (`NUMBER#<e164>`), listed by one Query.
pub fn tenant_numbers_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#NUMBERS")
}

/// The sort key of a number a tenant owns.
pub fn tenant_number_sk(e164: &str) -> String {
    format!("NUMBER#{e164}")
}

/// A Twilio account SID → the tenant whose subaccount it is (and its sealed auth token):
/// a webhook names only its `AccountSid`.
pub fn carrier_account_pk(account_sid: &str) -> String {
    format!("CARRIER#TWILIO#ACCOUNT#{account_sid}")
}

/// The sort key of [`dnc_number_pk`] items.
pub const DNC_NUMBER_SK: &str = "DNC";

/// The attribute of a [`dnc_number_pk`] item naming the DNC lists that hold the number
/// (a string set; absent when no list does).
pub const DNC_LISTS_ATTR: &str = "lists";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lead_with_the_tenant() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(departments_pk(&t), "TENANT#acme#DEPT");
        assert_eq!(department_name_sk("  Sales "), "NAME#sales");
        assert_eq!(
            agents_by_department_pk(&t, "dept_1"),
            "TENANT#acme#DEPT#dept_1#AGENTS"
        );
        assert_eq!(agents_by_department_sk("available", "a1"), "available#a1");
        assert!(events_pk(&t).starts_with("TENANT#acme#"));
    }
}
