//! Keys of the contact items in the core table, computed from tenant-scoped ids.
//!
//! - `TENANT#t#CONTACTS`: `C#<contact_id>` (the contact), `COUNT` (the counters).
//! - `TENANT#t#CIDX#<kind>#<shard>` ([`index_pk`]): `PHONE#<e164>` (the number's one owner),
//!   `EMAIL#<email>#<id>` and `NAME#<name>#<id>` (search index items), spread over
//!   partitions by the first characters of the indexed text, so that neither a prefix Query
//!   nor a large import's writes meet one huge partition.
//! - `TENANT#t#CLISTS`: `L#<list_id>` (the list), `LNAME#<name>` (name reservation).
//! - `TENANT#t#CLIST#<list_id>`: `M#<contact_id>` (membership).
//! - `TENANT#t#DNCLISTS`: `D#<id>`; `TENANT#t#DNCLIST#<id>`: `E#<e164>`; the tenant-wide
//!   registry item per number is `vocelio_shared::keys::dnc_number_pk`.
//! - `TENANT#t#IMPORTS`: `J#<job_id>`; `TENANT#t#IMPORT#<job_id>`: `ERR#<line>`.

use vocelio_shared::ids::TenantId;

/// A tenant's contacts and their index items.
pub fn contacts_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#CONTACTS")
}

/// Sort-key prefix of contact records.
pub const CONTACT_PREFIX: &str = "C#";

/// A contact's sort key.
pub fn contact_sk(contact_id: &str) -> String {
    format!("{CONTACT_PREFIX}{contact_id}")
}

/// The item claiming a phone number (E.164) for one contact of the tenant.
pub fn phone_sk(e164: &str) -> String {
    format!("PHONE#{e164}")
}

/// Sort-key prefix of phone claims.
pub const PHONE_PREFIX: &str = "PHONE#";

/// How many characters of the indexed text choose an index item's partition: `+` and three
/// digits of a number (country code and the start of the national number), two of an email
/// or a name.
fn shard_len(kind: &str) -> usize {
    if kind == "PHONE" { 4 } else { 2 }
}

/// The partition of a phone claim or search index item with sort key (or sort-key prefix)
/// `sk`: `TENANT#t#CIDX#<kind>#<first characters of the text>`.
pub fn index_pk(tenant: &TenantId, sk: &str) -> String {
    let (kind, text) = sk.split_once('#').unwrap_or((sk, ""));
    let shard: String = text.chars().take(shard_len(kind)).collect();
    format!("TENANT#{tenant}#CIDX#{kind}#{shard}")
}

/// Whether a sort-key prefix names its partition: its text is at least as long as the
/// shard (a shorter one would match items of many partitions).
pub fn index_prefix_is_routable(prefix: &str) -> bool {
    let (kind, text) = prefix.split_once('#').unwrap_or((prefix, ""));
    text.chars().count() >= shard_len(kind)
}

/// Sort-key prefix of email index items.
pub const EMAIL_PREFIX: &str = "EMAIL#";

/// An email index item.
pub fn email_sk(email: &str, contact_id: &str) -> String {
    format!("{EMAIL_PREFIX}{email}#{contact_id}")
}

/// Sort-key prefix of name index items.
pub const NAME_PREFIX: &str = "NAME#";

/// A name index item (`name` already folded).
pub fn name_sk(name: &str, contact_id: &str) -> String {
    format!("{NAME_PREFIX}{name}#{contact_id}")
}

/// The tenant's contact counters.
pub const COUNT_SK: &str = "COUNT";

/// A tenant's contact lists.
pub fn lists_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#CLISTS")
}

/// Sort-key prefix of contact lists.
pub const LIST_PREFIX: &str = "L#";

/// A contact list's sort key.
pub fn list_sk(list_id: &str) -> String {
    format!("{LIST_PREFIX}{list_id}")
}

/// The item reserving a list name (case-insensitive) in its tenant.
pub fn list_name_sk(name: &str) -> String {
    format!("LNAME#{}", fold(name))
}

/// The members of one contact list.
pub fn members_pk(tenant: &TenantId, list_id: &str) -> String {
    format!("TENANT#{tenant}#CLIST#{list_id}")
}

/// Sort-key prefix of memberships.
pub const MEMBER_PREFIX: &str = "M#";

/// A membership's sort key.
pub fn member_sk(contact_id: &str) -> String {
    format!("{MEMBER_PREFIX}{contact_id}")
}

/// A tenant's DNC lists.
pub fn dnc_lists_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#DNCLISTS")
}

/// Sort-key prefix of DNC lists.
pub const DNC_LIST_PREFIX: &str = "D#";

/// A DNC list's sort key.
pub fn dnc_list_sk(list_id: &str) -> String {
    format!("{DNC_LIST_PREFIX}{list_id}")
}

/// The entries of one DNC list.
pub fn dnc_entries_pk(tenant: &TenantId, list_id: &str) -> String {
    format!("TENANT#{tenant}#DNCLIST#{list_id}")
}

/// Sort-key prefix of DNC entries.
pub const DNC_ENTRY_PREFIX: &str = "E#";

/// A DNC entry's sort key.
pub fn dnc_entry_sk(e164: &str) -> String {
    format!("{DNC_ENTRY_PREFIX}{e164}")
}

/// A tenant's import jobs.
pub fn imports_pk(tenant: &TenantId) -> String {
    format!("TENANT#{tenant}#IMPORTS")
}

/// An import job's sort key.
pub fn import_sk(job_id: &str) -> String {
    format!("J#{job_id}")
}

/// The error rows of one import job.
pub fn import_rows_pk(tenant: &TenantId, job_id: &str) -> String {
    format!("TENANT#{tenant}#IMPORT#{job_id}")
}

/// Sort-key prefix of an import's error rows.
pub const ERROR_ROW_PREFIX: &str = "ERR#";

/// An error row's sort key: zero-padded so rows sort by line.
pub fn error_row_sk(line: u64) -> String {
    format!("{ERROR_ROW_PREFIX}{line:012}")
}

/// Folds text for index keys and case-insensitive matching: lowercase, whitespace collapsed,
/// `#` removed (the key separator).
pub fn fold(text: &str) -> String {
    text.split_whitespace()
        .map(|w| w.to_lowercase().replace('#', ""))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_tenant_scoped_and_fold_names() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(contacts_pk(&t), "TENANT#acme#CONTACTS");
        assert_eq!(list_name_sk("  VIP   Leads "), "LNAME#vip leads");
        assert_eq!(fold("Zoë  #1 Müller"), "zoë 1 müller");
        assert_eq!(error_row_sk(42), "ERR#000000000042");
    }

    #[test]
    fn index_items_and_prefixes_share_a_partition() {
        let t = TenantId::parse("acme").unwrap();
        let claim = phone_sk("+14155550123");
        assert_eq!(index_pk(&t, &claim), "TENANT#acme#CIDX#PHONE#+141");
        // Every prefix long enough to route lands in the partition of the items it matches.
        assert_eq!(index_pk(&t, "PHONE#+1415"), index_pk(&t, &claim));
        assert!(index_prefix_is_routable("PHONE#+141"));
        assert!(!index_prefix_is_routable("PHONE#+14"));
        let name = name_sk("zoë müller", "con_1");
        assert_eq!(index_pk(&t, &name), "TENANT#acme#CIDX#NAME#zo");
        assert_eq!(index_pk(&t, "NAME#zoë m"), index_pk(&t, &name));
        assert!(!index_prefix_is_routable("NAME#z"));
        let email = email_sk("ana@example.com", "con_1");
        assert_eq!(index_pk(&t, &email), "TENANT#acme#CIDX#EMAIL#an");
        // Another tenant's partitions are other partitions.
        let other = TenantId::parse("other").unwrap();
        assert_ne!(index_pk(&other, &claim), index_pk(&t, &claim));
    }

    #[test]
    fn the_dialler_reads_the_same_claim_and_contact_items() {
        // The telephony function checks a contact's doNotCall through these shared keys.
        let t = TenantId::parse("acme").unwrap();
        let claim = phone_sk("+14155550123");
        assert_eq!(
            vocelio_shared::dnc::contact_phone_claim_key(&t, "+14155550123"),
            (index_pk(&t, &claim), claim)
        );
        assert_eq!(
            vocelio_shared::dnc::contact_key(&t, "con_1"),
            (contacts_pk(&t), contact_sk("con_1"))
        );
    }
}
