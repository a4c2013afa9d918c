//! Contact files as people export them from spreadsheets and CRMs.
//!
//! * [`CsvRows`] and [`XlsxRows`] read a file as a stream of [`Row`]s with bounded memory,
//!   each row carrying a [`Checkpoint`] from which a later invocation can resume.
//! * [`ColumnMapping`] maps header columns to contact fields ([`ContactField`]).
//! * [`CsvExport`] writes contacts as CSV that [`auto_detect`] maps back losslessly.
//!
//! No I/O beyond the readers handed in, no async, no validation of phones or emails: the
//! caller validates the raw, trimmed text.

mod csv_rows;
mod csv_write;
mod mapping;
mod xlsx_rows;

pub use csv_rows::{
    CsvRows, Encoding, MAX_FIELDS, MAX_RECORD_BYTES, Sniffed, decode_windows_1252, sniff,
};
pub use csv_write::{CsvExport, EXPORT_HEADERS, ExportRow, neutralise_cell, restore_cell};
pub use mapping::{
    Column, ColumnMapping, ContactField, MappedRow, MappingError, PhoneHint, auto_detect,
    from_explicit,
};
pub use xlsx_rows::{FileKind, XlsxRows};

use serde::{Deserialize, Serialize};

/// A resumable position in a file.
///
/// CSV: `byte` is the absolute offset in the original object (BOM included) where reading
/// resumes, at a record boundary, and `line` the 1-based physical line at that offset.
/// XLSX: `byte` is 0 and `line` the sheet row number to resume from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Absolute byte offset (CSV) or 0 (XLSX).
    pub byte: u64,
    /// 1-based line (CSV) or sheet row (XLSX) at that position.
    pub line: u64,
}

/// One non-empty data record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based physical line (CSV) or sheet row (XLSX) where the record starts.
    pub line: u64,
    /// Decoded, trimmed cell texts in column order.
    pub fields: Vec<String>,
    /// Where reading resumes just after this record.
    pub next: Checkpoint,
}

/// Why a contact file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading the underlying stream or file failed.
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV record starting on `line` cannot be read.
    #[error("line {line}: {message}")]
    Csv { line: u64, message: String },
    /// The record starting on `line` is longer than [`MAX_RECORD_BYTES`].
    #[error("line {line}: the record is longer than {MAX_RECORD_BYTES} bytes")]
    RecordTooLarge { line: u64 },
    /// The workbook cannot be read.
    #[error("the workbook cannot be read: {0}")]
    Xlsx(String),
    /// The file has no header row (it is empty or blank).
    #[error("the file has no header row")]
    NoHeader,
    /// The file is not an XLSX workbook or has no worksheet.
    #[error("the file is not an XLSX workbook with a worksheet")]
    NotAWorkbook,
}
