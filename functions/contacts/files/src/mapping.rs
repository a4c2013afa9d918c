//! Mapping a file's header columns to contact fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Row;

/// A contact field a column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContactField {
    FirstName,
    LastName,
    /// A whole name, for the caller to split when first/last are absent.
    FullName,
    Phone,
    PhoneType,
    Email,
    Company,
    /// Tags separated by `;` or `,`, as the caller splits them.
    Tags,
    Status,
    /// A JSON object of custom fields (this service's own export).
    CustomFields,
    Notes,
}

impl ContactField {
    /// Every field, in declaration order.
    pub const ALL: [ContactField; 11] = [
        Self::FirstName,
        Self::LastName,
        Self::FullName,
        Self::Phone,
        Self::PhoneType,
        Self::Email,
        Self::Company,
        Self::Tags,
        Self::Status,
        Self::CustomFields,
        Self::Notes,
    ];

    /// The wire name (`firstName`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstName => "firstName",
            Self::LastName => "lastName",
            Self::FullName => "fullName",
            Self::Phone => "phone",
            Self::PhoneType => "phoneType",
            Self::Email => "email",
            Self::Company => "company",
            Self::Tags => "tags",
            Self::Status => "status",
            Self::CustomFields => "customFields",
            Self::Notes => "notes",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name))
    }
}

/// The phone type a phone column's header implies (`Mobile`, `Work Phone`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PhoneHint {
    Mobile,
    Work,
    Home,
    Landline,
}

impl PhoneHint {
    /// The phone type's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Work => "work",
            Self::Home => "home",
            Self::Landline => "landline",
        }
    }
}

/// What one header column holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Column {
    /// A contact field.
    Field(ContactField),
    /// A custom field with this name.
    Custom(String),
    /// Not imported.
    Ignore,
}

/// How each header position maps to contact data; stored with an import job to resume it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMapping {
    /// One entry per header position.
    pub columns: Vec<Column>,
    /// The phone type implied by the phone column's header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_hint: Option<PhoneHint>,
}

/// Why an explicit mapping is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The mapping names a header the file does not have.
    #[error("the file has no column named {0:?}")]
    UnknownHeader(String),
    /// The mapping's target is not a field name, `custom:<name>` or `ignore`.
    #[error("{0:?} is not a contact field, custom:<name> or ignore")]
    UnknownField(String),
    /// Two columns are mapped to the same contact field.
    #[error("more than one column is mapped to {0}")]
    DuplicateField(String),
    /// No column holds the phone number.
    #[error("no column is mapped to phone")]
    NoPhoneColumn,
}

/// A row's raw, trimmed texts by field; an empty string means absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedRow {
    pub first_name: String,
    pub last_name: String,
    pub full_name: String,
    pub phone: String,
    pub phone_type: String,
    pub email: String,
    pub company: String,
    pub tags: String,
    pub status: String,
    pub custom_fields_json: String,
    pub notes: String,
    /// Non-empty custom columns as (name, value), in column order.
    pub custom: Vec<(String, String)>,
}

/// Lowercases and drops BOMs, quotes, spaces, `_`, `-` and `.`.
fn normalize(header: &str) -> String {
    header
        .chars()
        .filter(|c| !matches!(c, '\u{FEFF}' | '"' | '\'' | '_' | '-' | '.') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field (and implied phone type) of a normalised header.
fn recognise(normalized: &str) -> Option<(ContactField, Option<PhoneHint>)> {
    use ContactField as F;
    let field = match normalized {
        "firstname" | "givenname" | "forename" | "fname" | "first" => F::FirstName,
        "lastname" | "surname" | "familyname" | "lname" | "last" => F::LastName,
        "name" | "fullname" | "contactname" | "contact" | "displayname" => F::FullName,
        "mobile" | "mobilephone" | "mobilenumber" | "mobilephonenumber" | "mobileno" | "cell"
        | "cellphone" | "cellnumber" | "cellphonenumber" => {
            return Some((F::Phone, Some(PhoneHint::Mobile)));
        }
        "workphone" | "businessphone" | "officephone" | "workphonenumber" => {
            return Some((F::Phone, Some(PhoneHint::Work)));
        }
        "homephone" | "homephonenumber" => return Some((F::Phone, Some(PhoneHint::Home))),
        "landline" | "landlinenumber" | "landlinephone" => {
            return Some((F::Phone, Some(PhoneHint::Landline)));
        }
        "phone" | "phonenumber" | "phoneno" | "telephone" | "telephonenumber" | "tel"
        | "number" | "phone1value" | "primaryphone" => F::Phone,
        "phonetype" | "type" | "phone1type" => F::PhoneType,
        "email" | "emailaddress" | "email1value" | "mail" => F::Email,
        "company" | "companyname" | "organization" | "organisation" | "organization1name"
        | "accountname" | "business" => F::Company,
        "tags" | "tag" | "labels" | "groups" | "groupmembership" => F::Tags,
        "status" => F::Status,
        "customfields" => F::CustomFields,
        "notes" | "note" | "comments" | "comment" => F::Notes,
        _ => return None,
    };
    Some((field, None))
}

/// Maps headers by their usual spellings (`First Name`, `Mobile`, `E-mail 1 - Value`, ...).
///
/// The first column of a field wins; a later one becomes a custom field named after its
/// header, as does any unknown header. Empty headers are ignored.
pub fn auto_detect(headers: &[String]) -> ColumnMapping {
    let mut mapping = ColumnMapping::default();
    for header in headers {
        let column = mapping.auto_column(header);
        mapping.push(column, header);
    }
    mapping
}

/// Maps headers as `explicit` says (header text, matched case-insensitively after trimming,
/// to a field name, `custom:<name>` or `ignore`) and the other headers by [`auto_detect`].
pub fn from_explicit(
    headers: &[String],
    explicit: &BTreeMap<String, String>,
) -> Result<ColumnMapping, MappingError> {
    let mut targets: Vec<(String, Column)> = Vec::with_capacity(explicit.len());
    for (header, target) in explicit {
        let key = header.trim();
        if !headers.iter().any(|h| h.trim().eq_ignore_ascii_case(key)) {
            return Err(MappingError::UnknownHeader(header.clone()));
        }
        let column = parse_target(target)?;
        if let Column::Field(field) = column
            && targets.iter().any(|(_, c)| *c == column)
        {
            return Err(MappingError::DuplicateField(field.as_str().to_owned()));
        }
        targets.push((key.to_owned(), column));
    }
    let chosen: Vec<Option<Column>> = headers
        .iter()
        .map(|h| {
            targets
                .iter()
                .find(|(key, _)| h.trim().eq_ignore_ascii_case(key))
                .map(|(_, column)| match column {
                    Column::Custom(name) if name.is_empty() => Column::Custom(h.trim().to_owned()),
                    other => other.clone(),
                })
        })
        .collect();
    let mut mapping = ColumnMapping::default();
    for (header, explicit_column) in headers.iter().zip(&chosen) {
        let column = match explicit_column {
            // A field chosen explicitly belongs to its first column even if a column of the
            // same header text comes later; auto-detection never takes it.
            Some(Column::Field(field)) if mapping.has(*field) => {
                Column::Custom(header.trim().into())
            }
            Some(column) => column.clone(),
            None => match mapping.auto_column(header) {
                Column::Field(field) if chosen.contains(&Some(Column::Field(field))) => {
                    Column::Custom(header.trim().to_owned())
                }
                column => column,
            },
        };
        mapping.push(column, header);
    }
    if !mapping.has(ContactField::Phone) {
        return Err(MappingError::NoPhoneColumn);
    }
    Ok(mapping)
}

/// A target; `Custom("")` stands for "custom, named after the header".
fn parse_target(target: &str) -> Result<Column, MappingError> {
    let t = target.trim();
    if t.eq_ignore_ascii_case("ignore") {
        return Ok(Column::Ignore);
    }
    if t.eq_ignore_ascii_case("custom") {
        return Ok(Column::Custom(String::new()));
    }
    if let Some(name) = t.get(..7).filter(|p| p.eq_ignore_ascii_case("custom:")) {
        let rest = t.get(name.len()..).unwrap_or_default().trim();
        return Ok(Column::Custom(rest.to_owned()));
    }
    ContactField::parse(t)
        .map(Column::Field)
        .ok_or_else(|| MappingError::UnknownField(target.to_owned()))
}

impl ColumnMapping {
    /// Whether a column holds `field`.
    pub fn has(&self, field: ContactField) -> bool {
        self.columns.contains(&Column::Field(field))
    }

    /// The phone type implied by the phone column's header (`mobile`, `work`, `home`,
    /// `landline`); a phone-type column's value, when present, should take precedence.
    pub fn implied_phone_type(&self) -> Option<&'static str> {
        self.phone_hint.map(PhoneHint::as_str)
    }

    /// Picks a row's texts by column; cells beyond the mapping are ignored.
    pub fn apply(&self, row: &Row) -> MappedRow {
        let mut out = MappedRow::default();
        for (column, value) in self.columns.iter().zip(&row.fields) {
            // An exported cell's formula guard comes off (see `csv_write`).
            let value = crate::csv_write::restore_cell(value.trim());
            if value.is_empty() {
                continue;
            }
            let slot = match column {
                Column::Ignore => continue,
                Column::Custom(name) => {
                    out.custom.push((name.clone(), value.to_owned()));
                    continue;
                }
                Column::Field(field) => match field {
                    ContactField::FirstName => &mut out.first_name,
                    ContactField::LastName => &mut out.last_name,
                    ContactField::FullName => &mut out.full_name,
                    ContactField::Phone => &mut out.phone,
                    ContactField::PhoneType => &mut out.phone_type,
                    ContactField::Email => &mut out.email,
                    ContactField::Company => &mut out.company,
                    ContactField::Tags => &mut out.tags,
                    ContactField::Status => &mut out.status,
                    ContactField::CustomFields => &mut out.custom_fields_json,
                    ContactField::Notes => &mut out.notes,
                },
            };
            value.clone_into(slot);
        }
        out
    }

    /// Auto-detected column for `header`, given the fields already taken.
    fn auto_column(&self, header: &str) -> Column {
        let trimmed = header.trim();
        let normalized = normalize(trimmed);
        if normalized.is_empty() {
            return Column::Ignore;
        }
        match recognise(&normalized) {
            Some((field, _)) if !self.has(field) => Column::Field(field),
            _ => Column::Custom(trimmed.trim_matches('\u{FEFF}').to_owned()),
        }
    }

    fn push(&mut self, column: Column, header: &str) {
        if column == Column::Field(ContactField::Phone) {
            self.phone_hint = recognise(&normalize(header)).and_then(|(_, hint)| hint);
        }
        self.columns.push(column);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Checkpoint;
    use ContactField as F;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn detect_one(header: &str) -> Column {
        auto_detect(&strings(&[header])).columns.remove(0)
    }

    #[test]
    fn recognises_every_documented_spelling() {
        let cases: &[(F, &[&str])] = &[
            (
                F::FirstName,
                &[
                    "First Name",
                    "first_name",
                    "firstname",
                    "Given Name",
                    "Forename",
                    "fname",
                    "FIRST-NAME",
                    "\u{FEFF}First Name",
                    "\"First Name\"",
                ],
            ),
            (
                F::LastName,
                &["Last Name", "Surname", "Family Name", "lname", "last_name"],
            ),
            (
                F::FullName,
                &["Name", "Full Name", "Contact Name", "Contact"],
            ),
            (
                F::Phone,
                &[
                    "Phone",
                    "Phone Number",
                    "PhoneNumber",
                    "phone_number",
                    "Mobile",
                    "Mobile Phone",
                    "Mobile Number",
                    "Cell",
                    "Cell Phone",
                    "Telephone",
                    "Tel",
                    "Tel.",
                    "Number",
                    "Phone 1 - Value",
                    "Primary Phone",
                    "Business Phone",
                    "Work Phone",
                    "Home Phone",
                    "Landline",
                ],
            ),
            (
                F::PhoneType,
                &["Phone Type", "Type", "Phone 1 - Type", "phone_type"],
            ),
            (
                F::Email,
                &[
                    "Email",
                    "E-mail",
                    "e_mail",
                    "Email Address",
                    "E-mail 1 - Value",
                    "Mail",
                ],
            ),
            (
                F::Company,
                &[
                    "Company",
                    "Organization",
                    "Organisation",
                    "Organization 1 - Name",
                    "Account Name",
                    "Business",
                ],
            ),
            (F::Tags, &["Tags", "Labels", "Groups", "Group Membership"]),
            (F::Status, &["Status"]),
            (F::CustomFields, &["customFields", "Custom Fields"]),
            (F::Notes, &["Notes", "Note", "Comments"]),
        ];
        for (field, headers) in cases {
            for header in *headers {
                assert_eq!(detect_one(header), Column::Field(*field), "{header:?}");
            }
        }
    }

    #[test]
    fn first_column_wins_and_the_rest_are_custom_or_ignored() {
        let m = auto_detect(&strings(&[
            "Phone",
            " Mobile ",
            "",
            "  ",
            "Favourite Colour ",
            "Email",
            "E-mail",
        ]));
        assert_eq!(
            m.columns,
            [
                Column::Field(F::Phone),
                Column::Custom("Mobile".into()),
                Column::Ignore,
                Column::Ignore,
                Column::Custom("Favourite Colour".into()),
                Column::Field(F::Email),
                Column::Custom("E-mail".into()),
            ]
        );
        assert_eq!(m.implied_phone_type(), None);
        assert!(m.has(F::Phone) && m.has(F::Email) && !m.has(F::FirstName));
    }

    #[test]
    fn phone_headers_imply_a_phone_type() {
        for (header, expected) in [
            ("Mobile", Some("mobile")),
            ("Mobile Phone", Some("mobile")),
            ("Cell", Some("mobile")),
            ("Cell Phone", Some("mobile")),
            ("Work Phone", Some("work")),
            ("Business Phone", Some("work")),
            ("Home Phone", Some("home")),
            ("Landline", Some("landline")),
            ("Phone", None),
            ("Phone 1 - Value", None),
        ] {
            let m = auto_detect(&strings(&["Name", header]));
            assert_eq!(m.implied_phone_type(), expected, "{header}");
        }
        // A later phone-like column that became custom implies nothing.
        let m = auto_detect(&strings(&["Phone", "Mobile"]));
        assert_eq!(m.implied_phone_type(), None);
    }

    #[test]
    fn google_contacts_export() {
        let headers = strings(&[
            "Name",
            "Given Name",
            "Family Name",
            "Group Membership",
            "E-mail 1 - Type",
            "E-mail 1 - Value",
            "Phone 1 - Type",
            "Phone 1 - Value",
            "Organization 1 - Name",
        ]);
        let m = auto_detect(&headers);
        assert_eq!(
            m.columns,
            [
                Column::Field(F::FullName),
                Column::Field(F::FirstName),
                Column::Field(F::LastName),
                Column::Field(F::Tags),
                Column::Custom("E-mail 1 - Type".into()),
                Column::Field(F::Email),
                Column::Field(F::PhoneType),
                Column::Field(F::Phone),
                Column::Field(F::Company),
            ]
        );
    }

    #[test]
    fn explicit_mapping() {
        let headers = strings(&["Phone", "Cell", "Nick", "Internal ID", "Email", "Other"]);
        let explicit: BTreeMap<String, String> = [
            (" cell ", "phone"),
            ("NICK", "custom:Nickname"),
            ("internal id", "ignore"),
            ("Email", "custom:"),
            ("other", "custom"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let m = from_explicit(&headers, &explicit).unwrap();
        assert_eq!(
            m.columns,
            [
                Column::Custom("Phone".into()),
                Column::Field(F::Phone),
                Column::Custom("Nickname".into()),
                Column::Ignore,
                Column::Custom("Email".into()),
                Column::Custom("Other".into()),
            ]
        );
        assert_eq!(m.implied_phone_type(), Some("mobile"));
        // Targets are case-insensitive field names.
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let m = from_explicit(&strings(&["Tel", "Kind"]), &one("Kind", "PHONETYPE")).unwrap();
        assert_eq!(
            m.columns,
            [Column::Field(F::Phone), Column::Field(F::PhoneType)]
        );
    }

    #[test]
    fn explicit_mapping_errors() {
        let headers = strings(&["Phone", "Email", "Other"]);
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            from_explicit(&headers, &one("Fax", "phone")),
            Err(MappingError::UnknownHeader("Fax".into()))
        );
        assert_eq!(
            from_explicit(&headers, &one("Other", "fax")),
            Err(MappingError::UnknownField("fax".into()))
        );
        assert_eq!(
            from_explicit(&headers, &one("Phone", "ignore")),
            Err(MappingError::NoPhoneColumn)
        );
        assert_eq!(
            from_explicit(&strings(&["Email"]), &BTreeMap::new()),
            Err(MappingError::NoPhoneColumn)
        );
        let two = BTreeMap::from([
            ("Email".to_owned(), "phone".to_owned()),
            ("Other".to_owned(), "phone".to_owned()),
        ]);
        assert_eq!(
            from_explicit(&headers, &two),
            Err(MappingError::DuplicateField("phone".into()))
        );
        assert!(from_explicit(&headers, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn apply_picks_texts_by_column() {
        let m = auto_detect(&strings(&[
            "First Name",
            "Phone",
            "Lead Source",
            "Skip",
            "Tags",
            "Score",
        ]));
        let mut m = m;
        m.columns[3] = Column::Ignore;
        let row = Row {
            line: 2,
            fields: strings(&["Ana", " 415 ", "Web", "x", "a;b", "", "beyond"]),
            next: Checkpoint { byte: 0, line: 3 },
        };
        let mapped = m.apply(&row);
        assert_eq!(mapped.first_name, "Ana");
        assert_eq!(mapped.phone, "415");
        assert_eq!(mapped.tags, "a;b");
        assert_eq!(
            mapped.custom,
            [("Lead Source".to_owned(), "Web".to_owned())]
        );
        assert_eq!(mapped.email, "");
        // A short row leaves later fields empty.
        let short = Row {
            fields: strings(&["Ben"]),
            ..row
        };
        assert_eq!(
            m.apply(&short),
            MappedRow {
                first_name: "Ben".into(),
                ..MappedRow::default()
            }
        );
    }

    #[test]
    fn mapping_serde_round_trip() {
        let m = auto_detect(&strings(&["Mobile", "X", ""]));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"columns":[{"field":"phone"},{"custom":"X"},"ignore"],"phoneHint":"mobile"}"#
        );
        assert_eq!(serde_json::from_str::<ColumnMapping>(&json).unwrap(), m);
        let plain: ColumnMapping =
            serde_json::from_str(r#"{"columns":[{"field":"firstName"}]}"#).unwrap();
        assert_eq!(plain.columns, [Column::Field(F::FirstName)]);
        assert_eq!(plain.phone_hint, None);
        for field in ContactField::ALL {
            let json = serde_json::to_string(&field).unwrap();
            assert_eq!(json, format!("\"{}\"", field.as_str()));
            assert_eq!(ContactField::parse(field.as_str()), Some(field));
        }
    }
}
