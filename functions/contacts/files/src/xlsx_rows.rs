//! Streaming XLSX reading and file-kind detection.
//!
//! The first worksheet is read cell by cell with calamine's `XlsxCellReader`, so a large
//! sheet is never held as a whole; the workbook's shared-strings table is held in memory
//! (calamine loads it when the workbook is opened). The cell reader borrows the workbook,
//! so it runs on a helper thread that hands rows over a small bounded channel.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use calamine::{DataRef, ExcelDateTime, Reader, SheetType, Xlsx, XlsxError};

use crate::{Checkpoint, FileError, MAX_FIELDS, Row};

/// Rows buffered between the reading thread and the iterator.
const CHANNEL_ROWS: usize = 16;

const XLSX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The kind of an uploaded contact file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Csv,
    Xlsx,
}

impl FileKind {
    /// Detects a file's kind from its name, declared content type and first bytes (4 are
    /// enough). `None` for anything else: old binary `.xls`, other zip files, UTF-16 text.
    pub fn detect(
        file_name: &str,
        content_type: Option<&str>,
        first_bytes: &[u8],
    ) -> Option<FileKind> {
        let name = file_name.trim().to_ascii_lowercase();
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext)
            .unwrap_or_default();
        let mime = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|ct| ct.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if first_bytes.starts_with(b"PK\x03\x04") {
            return (extension == "xlsx" || mime == XLSX_CONTENT_TYPE).then_some(FileKind::Xlsx);
        }
        // OLE2 (binary .xls) and UTF-16 text (Excel's "Unicode Text") are not supported.
        if first_bytes.starts_with(b"\xD0\xCF\x11\xE0")
            || first_bytes.starts_with(b"\xFF\xFE")
            || first_bytes.starts_with(b"\xFE\xFF")
        {
            return None;
        }
        let csv_name = matches!(extension, "csv" | "txt" | "tsv");
        let csv_mime = matches!(
            mime.as_str(),
            "text/csv"
                | "text/plain"
                | "text/tab-separated-values"
                | "application/csv"
                | "application/vnd.ms-excel"
        );
        (csv_name || csv_mime).then_some(FileKind::Csv)
    }
}

enum Msg {
    Opened,
    Header(Vec<String>),
    Row(Row),
    Error(FileError),
    End,
}

/// The rows of an XLSX file's first worksheet as [`Row`]s (`line` = sheet row number).
///
/// The first non-empty row is the header. Rows whose cells are all empty are skipped;
/// missing cells read as empty strings, and every row has at least as many fields as the
/// header. After an error the iterator ends.
pub struct XlsxRows {
    rx: Option<Receiver<Msg>>,
    worker: Option<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
    headers: Option<Vec<String>>,
    done: bool,
}

impl XlsxRows {
    /// Opens the first worksheet of the workbook at `path`.
    pub fn open(path: &Path) -> Result<Self, FileError> {
        Self::open_at(path, 0)
    }

    /// Opens the first worksheet and skips data rows numbered below `skip_until_line` (a
    /// [`Row::next`] checkpoint's `line`); the header row is still read first.
    pub fn open_at(path: &Path, skip_until_line: u64) -> Result<Self, FileError> {
        let (tx, rx) = sync_channel(CHANNEL_ROWS);
        let cancel = Arc::new(AtomicBool::new(false));
        let worker_cancel = Arc::clone(&cancel);
        let path = path.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("xlsx-rows".into())
            .spawn(move || read_sheet(&path, skip_until_line, &tx, &worker_cancel))?;
        let mut rows = Self {
            rx: Some(rx),
            worker: Some(worker),
            cancel,
            headers: None,
            done: false,
        };
        match rows.recv() {
            Msg::Opened => Ok(rows),
            Msg::Error(e) => Err(e),
            _ => Err(FileError::NotAWorkbook),
        }
    }

    /// The header row's trimmed texts, read now if not read yet.
    pub fn headers(&mut self) -> Result<Vec<String>, FileError> {
        if let Some(headers) = &self.headers {
            return Ok(headers.clone());
        }
        if self.done {
            return Err(FileError::NoHeader);
        }
        match self.recv() {
            Msg::Header(headers) => {
                self.headers = Some(headers.clone());
                Ok(headers)
            }
            Msg::Error(e) => {
                self.done = true;
                Err(e)
            }
            _ => {
                self.done = true;
                Err(FileError::NoHeader)
            }
        }
    }

    fn recv(&mut self) -> Msg {
        match self.rx.as_ref().map(Receiver::recv) {
            Some(Ok(msg)) => msg,
            _ => Msg::Error(FileError::Xlsx(
                "the sheet reader stopped unexpectedly".into(),
            )),
        }
    }
}

impl Iterator for XlsxRows {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.headers.is_none()
            && let Err(e) = self.headers()
        {
            return Some(Err(e));
        }
        match self.recv() {
            Msg::Row(row) => Some(Ok(row)),
            Msg::Error(e) => {
                self.done = true;
                Some(Err(e))
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

impl Drop for XlsxRows {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // Dropping the receiver makes a blocked send fail, so the thread ends promptly.
        self.rx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn xlsx_error(e: XlsxError) -> FileError {
    match e {
        XlsxError::Io(e) => FileError::Io(e),
        XlsxError::Zip(_) => FileError::NotAWorkbook,
        other => FileError::Xlsx(other.to_string()),
    }
}

/// The reading thread: sends `Opened` or an error, then the header, rows, and `End`.
fn read_sheet(path: &PathBuf, skip_until: u64, tx: &SyncSender<Msg>, cancel: &AtomicBool) {
    let opened: Result<Xlsx<BufReader<File>>, FileError> =
        calamine::open_workbook(path).map_err(xlsx_error);
    let mut workbook = match opened {
        Ok(workbook) => workbook,
        Err(e) => {
            let _ = tx.send(Msg::Error(e));
            return;
        }
    };
    let sheet = workbook
        .sheets_metadata()
        .iter()
        .find(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone());
    let Some(sheet) = sheet else {
        let _ = tx.send(Msg::Error(FileError::NotAWorkbook));
        return;
    };
    let mut cells = match workbook.worksheet_cells_reader(&sheet) {
        Ok(cells) => cells,
        Err(e) => {
            let _ = tx.send(Msg::Error(xlsx_error(e)));
            return;
        }
    };
    if tx.send(Msg::Opened).is_err() {
        return;
    }
    let mut rows = RowAssembler {
        tx,
        skip_until,
        header_len: None,
        row: None,
        fields: Vec::new(),
    };
    loop {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Msg::Error(xlsx_error(e)));
                return;
            }
        };
        let (row, col) = cell.get_position();
        if rows.row != Some(row) && !rows.flush(Some(row)) {
            return;
        }
        let Ok(col) = usize::try_from(col) else {
            return;
        };
        let text = cell_text(cell.get_value());
        if text.is_empty() {
            continue;
        }
        if col >= MAX_FIELDS {
            let _ = tx.send(Msg::Error(FileError::Xlsx(format!(
                "row {}: a cell lies beyond column {MAX_FIELDS}",
                u64::from(row) + 1
            ))));
            return;
        }
        if rows.fields.len() <= col {
            rows.fields.resize(col + 1, String::new());
        }
        if let Some(slot) = rows.fields.get_mut(col) {
            *slot = text;
        }
    }
    if rows.flush(None) {
        let _ = tx.send(Msg::End);
    }
}

struct RowAssembler<'a> {
    tx: &'a SyncSender<Msg>,
    skip_until: u64,
    header_len: Option<usize>,
    /// 0-based sheet row being assembled.
    row: Option<u32>,
    fields: Vec<String>,
}

impl RowAssembler<'_> {
    /// Sends the row assembled so far (if not empty) and starts `next`; false when the
    /// receiver is gone.
    fn flush(&mut self, next: Option<u32>) -> bool {
        let fields = std::mem::take(&mut self.fields);
        let row = std::mem::replace(&mut self.row, next);
        let Some(row) = row else {
            return true;
        };
        if fields.iter().all(String::is_empty) {
            return true;
        }
        let line = u64::from(row) + 1;
        let msg = match self.header_len {
            None => {
                self.header_len = Some(fields.len());
                Msg::Header(fields)
            }
            Some(_) if line < self.skip_until => return true,
            Some(header_len) => {
                let mut fields = fields;
                if fields.len() < header_len {
                    fields.resize(header_len, String::new());
                }
                Msg::Row(Row {
                    line,
                    fields,
                    next: Checkpoint {
                        byte: 0,
                        line: line + 1,
                    },
                })
            }
        };
        self.tx.send(msg).is_ok()
    }
}

/// A cell's text: strings trimmed, integral numbers without `.0` or exponent, booleans as
/// `TRUE`/`FALSE`, dates and times as ISO 8601, errors and empty cells as "".
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            s.trim().to_owned()
        }
        DataRef::SharedString(s) => s.trim().to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => format_number(*f),
        DataRef::Bool(true) => "TRUE".to_owned(),
        DataRef::Bool(false) => "FALSE".to_owned(),
        DataRef::DateTime(dt) => format_datetime(dt),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// Formats a number as Excel shows it in General format, without exponent: 15 significant
/// digits, integral values without a fractional part (`14155550123`).
pub(crate) fn format_number(f: f64) -> String {
    if !f.is_finite() {
        return String::new();
    }
    // Excel keeps 15 significant digits; this also cleans binary noise (0.30000000000000004).
    let f: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    format!("{f}")
}

/// Formats an Excel date/time: `YYYY-MM-DD`, `HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS[.mmm]`, or
/// an ISO 8601 duration (`PT36H5M0S`) for duration formats.
pub(crate) fn format_datetime(dt: &ExcelDateTime) -> String {
    let serial = dt.as_f64();
    if dt.is_duration() {
        let total = (serial * 86_400.0).round() as i64;
        let sign = if total < 0 { "-" } else { "" };
        let total = total.abs();
        return format!(
            "{sign}PT{}H{}M{}S",
            total / 3600,
            total / 60 % 60,
            total % 60
        );
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    let time = if ms > 0 {
        format!("{h:02}:{mi:02}:{s:02}.{ms:03}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    };
    if (0.0..1.0).contains(&serial) {
        time
    } else if (h, mi, s, ms) == (0, 0, 0, 0) {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{time}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../local/tests/fixtures/contacts")
            .join(name)
    }

    fn lines(rows: &[Row]) -> Vec<u64> {
        rows.iter().map(|r| r.line).collect()
    }

    #[test]
    fn reads_the_fixture_workbook() {
        let mut rows = XlsxRows::open(&fixture("contacts.xlsx")).unwrap();
        assert_eq!(
            rows.headers().unwrap(),
            ["First Name", "Last Name", "Mobile", "Email", "Company"]
        );
        let all: Vec<Row> = rows.map(Result::unwrap).collect();
        assert_eq!(lines(&all), [2, 3, 4, 6, 7]);
        assert_eq!(
            all[0].fields,
            ["Pat", "Quinn", "14155552901", "pat@example.com", "Acme"]
        );
        assert_eq!(
            all[1].fields,
            ["Rae", "Soto", "(415) 555-2902", "rae@example.com", ""]
        );
        assert_eq!(all[2].fields[2], "n/a");
        assert_eq!(all[3].fields[2], "415-555-2901");
        assert_eq!(all[2].next, Checkpoint { byte: 0, line: 5 });
        assert_eq!(all[4].next, Checkpoint { byte: 0, line: 8 });
    }

    #[test]
    fn open_at_skips_rows_but_reads_the_header() {
        let path = fixture("contacts.xlsx");
        for (from, expected) in [
            (0, vec![2, 3, 4, 6, 7]),
            (4, vec![4, 6, 7]),
            (5, vec![6, 7]),
            (7, vec![7]),
            (8, vec![]),
        ] {
            let mut rows = XlsxRows::open_at(&path, from).unwrap();
            assert_eq!(rows.headers().unwrap()[2], "Mobile");
            let got: Vec<Row> = rows.map(Result::unwrap).collect();
            assert_eq!(lines(&got), expected, "from {from}");
        }
        // Iterating without asking for the headers yields data rows only.
        let rows = XlsxRows::open_at(&path, 6).unwrap();
        assert_eq!(lines(&rows.map(Result::unwrap).collect::<Vec<_>>()), [6, 7]);
        // Dropping a reader part-way stops its thread.
        let mut rows = XlsxRows::open(&path).unwrap();
        assert!(rows.next().is_some());
        drop(rows);
    }

    #[test]
    fn non_workbooks_are_refused() {
        assert!(matches!(
            XlsxRows::open(&fixture("semicolon.csv")),
            Err(FileError::NotAWorkbook)
        ));
        assert!(matches!(
            XlsxRows::open(&fixture("no-such-file.xlsx")),
            Err(FileError::Io(_))
        ));
    }

    #[test]
    fn numbers_read_as_excel_shows_them() {
        assert_eq!(format_number(14_155_550_123.0), "14155550123");
        assert_eq!(format_number(1.415_555_012_3e10), "14155550123");
        assert_eq!(format_number(4_915_112_345_678.0), "4915112345678");
        assert_eq!(format_number(14_155_552_900.999_998), "14155552901");
        assert_eq!(format_number(-3.0), "-3");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(1e20), "100000000000000000000");
        assert_eq!(format_number(f64::NAN), "");
        assert_eq!(cell_text(&DataRef::Int(42)), "42");
        assert_eq!(cell_text(&DataRef::Bool(true)), "TRUE");
        assert_eq!(cell_text(&DataRef::Bool(false)), "FALSE");
        assert_eq!(cell_text(&DataRef::SharedString("  a b ")), "a b");
        assert_eq!(cell_text(&DataRef::Error(calamine::CellErrorType::NA)), "");
    }

    #[test]
    fn dates_read_as_iso_8601() {
        let dt = |v, t| cell_text(&DataRef::DateTime(ExcelDateTime::new(v, t, false)));
        assert_eq!(dt(45943.0, ExcelDateTimeType::DateTime), "2025-10-13");
        assert_eq!(
            dt(45943.5, ExcelDateTimeType::DateTime),
            "2025-10-13T12:00:00"
        );
        assert_eq!(
            dt(45943.541, ExcelDateTimeType::DateTime),
            "2025-10-13T12:59:02.400"
        );
        assert_eq!(dt(0.75, ExcelDateTimeType::DateTime), "18:00:00");
        assert_eq!(dt(1.5, ExcelDateTimeType::TimeDelta), "PT36H0M0S");
        assert_eq!(
            cell_text(&DataRef::DateTimeIso("2024-01-02".into())),
            "2024-01-02"
        );
    }

    #[test]
    fn detects_file_kinds() {
        let zip = b"PK\x03\x04rest";
        let ole = b"\xD0\xCF\x11\xE0rest";
        let text = b"name,phone";
        assert_eq!(FileKind::detect("c.xlsx", None, zip), Some(FileKind::Xlsx));
        assert_eq!(
            FileKind::detect("upload", Some(XLSX_CONTENT_TYPE), zip),
            Some(FileKind::Xlsx)
        );
        assert_eq!(
            FileKind::detect("C.XLSX", Some("application/octet-stream"), zip),
            Some(FileKind::Xlsx)
        );
        assert_eq!(
            FileKind::detect("c.zip", Some("application/zip"), zip),
            None
        );
        assert_eq!(FileKind::detect("c.csv", Some("text/csv"), zip), None);
        assert_eq!(
            FileKind::detect("c.xls", Some("application/vnd.ms-excel"), ole),
            None
        );
        assert_eq!(FileKind::detect("c.csv", None, ole), None);
        assert_eq!(FileKind::detect("c.csv", None, text), Some(FileKind::Csv));
        assert_eq!(FileKind::detect("c.txt", None, text), Some(FileKind::Csv));
        assert_eq!(
            FileKind::detect("upload", Some("text/csv; charset=utf-8"), text),
            Some(FileKind::Csv)
        );
        assert_eq!(
            FileKind::detect("upload", Some("application/vnd.ms-excel"), text),
            Some(FileKind::Csv)
        );
        assert_eq!(
            FileKind::detect("upload", Some("application/csv"), text),
            Some(FileKind::Csv)
        );
        assert_eq!(
            FileKind::detect("upload", Some("text/plain"), b""),
            Some(FileKind::Csv)
        );
        assert_eq!(FileKind::detect("c.xlsx", None, text), None);
        assert_eq!(
            FileKind::detect("c.pdf", Some("application/pdf"), text),
            None
        );
        assert_eq!(FileKind::detect("c.txt", None, b"\xFF\xFEn\0"), None);
    }
}
