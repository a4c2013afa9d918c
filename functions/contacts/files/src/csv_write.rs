//! Writing contacts as CSV, in chunks the caller streams out.
//!
//! RFC 4180: fields holding `,`, `"`, CR or LF (or leading/trailing spaces) are quoted with
//! inner quotes doubled; CRLF line ends; UTF-8 without BOM.
//!
//! Formula-safe: a cell a spreadsheet would evaluate (starting with `=`, `+`, `-`, `@`, a tab
//! or a CR, possibly after leading `'`s) is written with one `'` in front, which spreadsheets
//! show as text (OWASP's CSV-injection defence). The import takes exactly that `'` off again
//! ([`restore_cell`]), so an export still re-imports losslessly. Phones are E.164 (`+` and
//! digits only) and are written as they are.

/// The export's columns, in order; [`crate::auto_detect`] maps each back to its field.
pub const EXPORT_HEADERS: [&str; 10] = [
    "firstName",
    "lastName",
    "phone",
    "phoneType",
    "email",
    "company",
    "status",
    "tags",
    "customFields",
    "notes",
];

/// One contact to export; empty strings are written as empty fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportRow<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub phone: &'a str,
    pub phone_type: &'a str,
    pub email: &'a str,
    pub company: &'a str,
    pub status: &'a str,
    /// Joined with `;` (tags themselves should not contain `;`).
    pub tags: &'a [String],
    /// A JSON object, or empty.
    pub custom_fields_json: &'a str,
    pub notes: &'a str,
}

/// Writes the header line and rows of a contact export as byte chunks.
#[derive(Debug, Default)]
pub struct CsvExport {
    rows: u64,
}

impl CsvExport {
    /// An export with the columns of [`EXPORT_HEADERS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The header line.
    pub fn header(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        write_record(&mut out, EXPORT_HEADERS.iter().copied());
        out
    }

    /// One contact's line.
    pub fn row(&mut self, r: &ExportRow<'_>) -> Vec<u8> {
        self.rows += 1;
        let tags = r.tags.join(";");
        let cells = [
            neutralise_cell(r.first_name),
            neutralise_cell(r.last_name),
            std::borrow::Cow::Borrowed(r.phone),
            neutralise_cell(r.phone_type),
            neutralise_cell(r.email),
            neutralise_cell(r.company),
            neutralise_cell(r.status),
            neutralise_cell(&tags),
            neutralise_cell(r.custom_fields_json),
            neutralise_cell(r.notes),
        ];
        let mut out = Vec::with_capacity(128);
        write_record(&mut out, cells.iter().map(|c| c.as_ref()));
        out
    }

    /// How many rows were written.
    pub fn rows_written(&self) -> u64 {
        self.rows
    }
}

/// Whether a spreadsheet would evaluate `value` as a formula once its leading `'`s are
/// read as text markers.
fn looks_like_formula(value: &str) -> bool {
    value
        .trim_start_matches('\'')
        .starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// `value` as written to a cell: one `'` in front when a spreadsheet would evaluate it.
pub fn neutralise_cell(value: &str) -> std::borrow::Cow<'_, str> {
    if looks_like_formula(value) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// A cell as read back: the `'` [`neutralise_cell`] added is taken off (and only that one).
pub fn restore_cell(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if looks_like_formula(value) => rest,
        _ => value,
    }
}

fn write_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let needs_quotes = field
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
            || field.starts_with(char::is_whitespace)
            || field.ends_with(char::is_whitespace);
        if needs_quotes {
            out.push(b'"');
            for b in field.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_restored_exactly() {
        for value in [
            "=HYPERLINK(\"http://x\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
            "'=x",
            "''@y",
            "\tx",
        ] {
            let written = neutralise_cell(value);
            assert!(written.starts_with('\''), "{value}");
            assert_eq!(restore_cell(&written), value);
        }
        for value in ["Ada", "'t Hooft", "O'Brien", "a=b", ""] {
            assert_eq!(neutralise_cell(value), value);
            assert_eq!(restore_cell(value), value);
        }
        let mut export = CsvExport::new();
        let line = String::from_utf8(export.row(&ExportRow {
            first_name: "=1+1",
            phone: "+14155550123",
            notes: "@cmd",
            ..ExportRow::default()
        }))
        .unwrap();
        assert!(line.starts_with("'=1+1,,+14155550123,"), "{line}");
        assert!(line.trim_end().ends_with(",'@cmd"), "{line}");
    }
    use crate::{Column, ContactField, CsvRows, auto_detect, sniff};

    #[test]
    fn every_export_header_maps_back_to_its_field() {
        let headers: Vec<String> = EXPORT_HEADERS.iter().map(|h| (*h).to_owned()).collect();
        let mapping = auto_detect(&headers);
        let fields: Vec<&str> = mapping
            .columns
            .iter()
            .map(|c| match c {
                Column::Field(f) => f.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(fields, EXPORT_HEADERS);
        assert!(mapping.has(ContactField::CustomFields));
    }

    #[test]
    fn writes_rfc4180_with_crlf() {
        let mut export = CsvExport::new();
        assert_eq!(
            export.header(),
            b"firstName,lastName,phone,phoneType,email,company,status,tags,customFields,notes\r\n"
        );
        let tags = vec!["vip".to_owned(), "west".to_owned()];
        let line = export.row(&ExportRow {
            first_name: "Ana",
            phone: "+14155552671",
            company: "Ode, Inc.",
            tags: &tags,
            custom_fields_json: r#"{"k":"v"}"#,
            notes: "=1+1 \"hi\"\nbye",
            ..ExportRow::default()
        });
        assert_eq!(
            String::from_utf8(line).unwrap(),
            ",,,,,,,,,\r\n".replace(
                ",,,,,,,,,",
                "Ana,,+14155552671,,,\"Ode, Inc.\",,vip;west,\"{\"\"k\"\":\"\"v\"\"}\",\"'=1+1 \"\"hi\"\"\nbye\""
            )
        );
        assert_eq!(export.rows_written(), 1);
    }

    #[test]
    fn export_round_trips_through_import() {
        let mut export = CsvExport::new();
        let mut bytes = export.header();
        let tags = vec!["vip".to_owned(), "west-coast".to_owned()];
        let rows = [
            ExportRow {
                first_name: "Zoë",
                last_name: "O'Brien, Jr.",
                phone: "+4930901820",
                phone_type: "work",
                email: "zoe@example.de",
                company: "Bäckerei \"Süß\"",
                status: "active",
                tags: &tags,
                custom_fields_json: r#"{"plan":"gold","note":"a,b"}"#,
                notes: "line one\r\nline two\n=cmd|' /C calc'!A0",
            },
            ExportRow {
                phone: "+14155552671",
                ..ExportRow::default()
            },
        ];
        for r in &rows {
            bytes.extend(export.row(r));
        }
        let sniffed = sniff(&bytes);
        let mut reader = CsvRows::new(&bytes[..], &sniffed);
        let mapping = auto_detect(&reader.headers().unwrap());
        let mapped: Vec<_> = reader.map(|r| mapping.apply(&r.unwrap())).collect();
        assert_eq!(mapped.len(), 2);
        let (m, r) = (&mapped[0], &rows[0]);
        assert_eq!(
            [
                &m.first_name,
                &m.last_name,
                &m.phone,
                &m.phone_type,
                &m.email,
                &m.company,
                &m.status,
                &m.custom_fields_json,
                &m.notes
            ],
            [
                r.first_name,
                r.last_name,
                r.phone,
                r.phone_type,
                r.email,
                r.company,
                r.status,
                r.custom_fields_json,
                r.notes
            ]
        );
        assert_eq!(m.tags, "vip;west-coast");
        assert!(m.custom.is_empty());
        assert_eq!(mapped[1].phone, "+14155552671");
        assert_eq!(mapped[1].first_name, "");
    }
}
