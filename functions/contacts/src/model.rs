//! The records of contact management, as stored and as the API returns them (camelCase, as
//! the contact guide specifies).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether a contact may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContactStatus {
    /// Callable.
    Active,
    /// Kept, but not called by campaigns.
    Inactive,
    /// Must never be called (on a DNC list, or marked by a user).
    DoNotCall,
}

impl ContactStatus {
    /// Every status, in counter order.
    pub const ALL: [ContactStatus; 3] = [Self::Active, Self::Inactive, Self::DoNotCall];

    /// The wire name (`active`, `inactive`, `doNotCall`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::DoNotCall => "doNotCall",
        }
    }

    /// Reads a wire name, case-insensitively (`do_not_call` and `dnc` too).
    pub fn parse(text: &str) -> Option<Self> {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace(['_', '-', ' '], "")
            .as_str()
        {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "donotcall" | "dnc" => Some(Self::DoNotCall),
            _ => None,
        }
    }
}

/// What kind of line a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PhoneType {
    Mobile,
    Landline,
    Work,
    Home,
    Other,
}

impl PhoneType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Landline => "landline",
            Self::Work => "work",
            Self::Home => "home",
            Self::Other => "other",
        }
    }

    /// Reads a wire name or a common spelling (`cell`, `fixed`, `office`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "mobile" | "cell" | "cellular" | "cell phone" | "mobile phone" => Some(Self::Mobile),
            "landline" | "fixed" | "fixed line" | "main" => Some(Self::Landline),
            "work" | "office" | "business" => Some(Self::Work),
            "home" => Some(Self::Home),
            "other" => Some(Self::Other),
            _ => None,
        }
    }
}

/// One person the tenant may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    /// E.164; unique in the tenant.
    pub phone: String,
    pub phone_type: PhoneType,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub notes: Option<String>,
    pub status: ContactStatus,
    /// `status == doNotCall`, for clients that read a flag.
    pub do_not_call: bool,
    /// The contact lists it belongs to (at most [`MAX_LISTS_PER_CONTACT`]).
    /// Stored as a string set so memberships change it with `ADD`/`DELETE` (absent when
    /// empty: DynamoDB has no empty sets).
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub list_ids: Vec<String>,
    /// `api` or `import`.
    pub source: String,
    /// The last import job that created or updated it.
    #[serde(default)]
    pub import_job_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by every change (optimistic locking).
    pub version: u64,
}

/// The most lists one contact may belong to (a contact's deletion removes every membership
/// in one transaction).
pub const MAX_LISTS_PER_CONTACT: usize = 30;

impl Contact {
    /// Sets the status and the flag that mirrors it.
    pub fn set_status(&mut self, status: ContactStatus) {
        self.status = status;
        self.do_not_call = status == ContactStatus::DoNotCall;
    }

    /// The API's JSON form: every field, `listIds` always present and sorted.
    pub fn view(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        let mut lists = self.list_ids.clone();
        lists.sort();
        value["listIds"] = serde_json::json!(lists);
        value
    }

    /// The display name (`first last`).
    pub fn full_name(&self) -> String {
        match self.last_name.as_deref() {
            Some(last) if !last.is_empty() => format!("{} {last}", self.first_name),
            _ => self.first_name.clone(),
        }
    }
}

/// A named list of contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactList {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `active` or `archived` (deleted lists are archived).
    pub status: ListStatus,
    /// Exact number of members, kept in the same transactions as the memberships.
    #[serde(default)]
    pub contact_count: u64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

/// Whether a list is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListStatus {
    Active,
    Archived,
}

impl ListStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }
}

/// A do-not-call list (the national registry export, the tenant's own opt-outs, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DncList {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Exact number of entries.
    #[serde(default)]
    pub entry_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// One number on a DNC list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DncEntry {
    pub phone: String,
    pub list_id: String,
    pub added_at: String,
    pub added_by: String,
}
