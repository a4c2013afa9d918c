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
