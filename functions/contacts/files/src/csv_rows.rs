//! Streaming CSV reading: sniffing, decoding, resumable records.
//!
//! Parsing uses `csv-core` (the engine of the `csv` crate, same dialect: RFC 4180 quoting
//! with doubled quotes, CR, LF or CRLF line ends, ragged rows) driven directly, so that each
//! record's exact first byte and line are known (the `csv` crate's `Reader` reports the
//! position *before* skipped blank lines and consumes a CRLF's LF lazily) and so that an
//! oversized record is refused before it is buffered whole.

use std::io::{BufRead, BufReader, Read};

use csv_core::ReadRecordResult;

use crate::{Checkpoint, FileError, Row};

/// The longest record accepted, in bytes of the file (quotes and line end included).
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// The most fields a record may have (Excel's column limit).
pub const MAX_FIELDS: usize = 16_384;

const READ_BUFFER: usize = 64 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// How a CSV file's bytes are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// UTF-8 (with or without BOM).
    Utf8,
    /// Windows-1252, as Excel's "CSV (Comma delimited)" writes on Western Windows.
    Windows1252,
}

/// What [`sniff`] found in the first bytes of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sniffed {
    /// Length of the UTF-8 byte-order mark at the start (3) or 0.
    pub bom_len: usize,
    /// The field delimiter: `,`, `;`, `\t` or `|`.
    pub delimiter: u8,
    /// The text encoding.
    pub encoding: Encoding,
}

/// Inspects the first bytes of a CSV file (a few KiB are plenty).
///
/// The delimiter is the one of `,` `;` `\t` `|` that occurs most often outside double
/// quotes in the first record (ties and none: `,`). The encoding is UTF-8 when the prefix
/// is valid UTF-8 (a multibyte character cut off at its end is allowed), else Windows-1252.
pub fn sniff(prefix: &[u8]) -> Sniffed {
    let bom_len = if prefix.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let body = prefix.get(bom_len..).unwrap_or_default();
    let encoding = match std::str::from_utf8(body) {
        Ok(_) => Encoding::Utf8,
        Err(e) if e.error_len().is_none() => Encoding::Utf8,
        Err(_) => Encoding::Windows1252,
    };
    Sniffed {
        bom_len,
        delimiter: sniff_delimiter(body),
        encoding,
    }
}

fn sniff_delimiter(body: &[u8]) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut in_quotes = false;
    let start = body
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(body.len());
    for &b in body.iter().skip(start) {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            if b == b'\n' || b == b'\r' {
                break;
            }
            if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                counts[i] += 1;
            }
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    let winners: Vec<u8> = DELIMITERS
        .iter()
        .zip(counts)
        .filter(|&(_, n)| n == max)
        .map(|(&d, _)| d)
        .collect();
    match winners.as_slice() {
        [only] if max > 0 => *only,
        _ => b',',
    }
}

/// Decodes Windows-1252 bytes (undefined bytes become U+FFFD).
pub fn decode_windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{FFFD}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{FFFD}',
        '\u{017D}', '\u{FFFD}', '\u{FFFD}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}',
        '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}',
        '\u{0153}', '\u{FFFD}', '\u{017E}', '\u{0178}',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

fn decode(bytes: &[u8], encoding: Encoding) -> String {
    let text = match encoding {
        // A file whose prefix was UTF-8 may still hold a Windows-1252 byte further on.
        Encoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(s) => return clean(s),
            Err(_) => decode_windows_1252(bytes),
        },
        Encoding::Windows1252 => decode_windows_1252(bytes),
    };
    clean(&text)
}

/// Trims whitespace (a stray `\r` included) and byte-order marks.
fn clean(text: &str) -> String {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
        .to_owned()
}

/// The records of a CSV file as [`Row`]s, one record in memory at a time.
///
/// Records whose fields are all empty (blank lines, `,,,`) are skipped; line numbers still
/// count them. Lines are counted by LF (`\n`); CRLF and LF files are both exact. After an
/// error the iterator ends.
pub struct CsvRows<R: Read> {
    input: BufReader<R>,
    core: csv_core::Reader,
    encoding: Encoding,
    /// Absolute position of the next unread byte.
    pos: Checkpoint,
    /// BOM bytes still to skip at the start of a fresh file.
    bom_left: usize,
    expect_header: bool,
    headers: Option<Vec<String>>,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// An I/O error met after a record was complete, reported on the next call.
    pending: Option<FileError>,
    done: bool,
}

impl<R: Read> CsvRows<R> {
    /// Reads a whole file from its first byte (pass the stream from byte 0, BOM included:
    /// a BOM is skipped here when present). Its first non-empty record is the header.
    pub fn new(reader: R, sniffed: &Sniffed) -> Self {
        Self::build(
            reader,
            sniffed,
            Checkpoint { byte: 0, line: 1 },
            sniffed.bom_len,
            true,
        )
    }

    /// Reads a stream that begins at `start`, a [`Row::next`] checkpoint of an earlier read of
    /// the same file (e.g. an HTTP Range read from `start.byte`). There is no header row:
    /// the caller kept the headers.
    pub fn resume(reader: R, sniffed: &Sniffed, start: Checkpoint) -> Self {
        Self::build(reader, sniffed, start, 0, false)
    }

    fn build(
        reader: R,
        sniffed: &Sniffed,
        pos: Checkpoint,
        bom_left: usize,
        expect_header: bool,
    ) -> Self {
        let core = csv_core::ReaderBuilder::new()
            .delimiter(sniffed.delimiter)
            .quote(b'"')
            .quoting(true)
            .double_quote(true)
            .build();
        Self {
            input: BufReader::with_capacity(READ_BUFFER, reader),
            core,
            encoding: sniffed.encoding,
            pos,
            bom_left,
            expect_header,
            headers: None,
            out: vec![0; 4096],
            ends: vec![0; 64],
            pending: None,
            done: false,
        }
    }

    /// The header row's trimmed texts, read now if not read yet. Empty when resuming.
    pub fn headers(&mut self) -> Result<Vec<String>, FileError> {
        if let Some(headers) = &self.headers {
            return Ok(headers.clone());
        }
        if !self.expect_header {
            return Ok(Vec::new());
        }
        match self.next_non_empty() {
            Ok(Some(row)) => {
                self.expect_header = false;
                self.headers = Some(row.fields.clone());
                Ok(row.fields)
            }
            Ok(None) => {
                self.done = true;
                Err(FileError::NoHeader)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// The position of the next unread record (where a resumed read would start).
    pub fn position(&self) -> Checkpoint {
        self.pos
    }

    fn next_non_empty(&mut self) -> Result<Option<Row>, FileError> {
        loop {
            match self.next_record()? {
                None => return Ok(None),
                Some(row) if row.fields.iter().all(String::is_empty) => continue,
                Some(row) => return Ok(Some(row)),
            }
        }
    }

    fn skip_bom(&mut self) -> std::io::Result<()> {
        while self.bom_left > 0 {
            let expected = UTF8_BOM.get(UTF8_BOM.len() - self.bom_left).copied();
            let buf = self.input.fill_buf()?;
            if buf.is_empty() || buf.first().copied() != expected {
                self.bom_left = 0;
                break;
            }
            self.input.consume(1);
            self.pos.byte += 1;
            self.bom_left -= 1;
        }
        Ok(())
    }

    /// Consumes line ends before the next record; true at the end of the input.
    fn skip_line_ends(&mut self) -> std::io::Result<bool> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(true);
            }
            let n = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            let lines = count_lines(buf.get(..n).unwrap_or_default());
            let whole = n == buf.len();
            self.input.consume(n);
            self.pos.byte += n as u64;
            self.pos.line += lines;
            if !whole {
                return Ok(false);
            }
        }
    }

    fn next_record(&mut self) -> Result<Option<Row>, FileError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        self.skip_bom()?;
        if self.skip_line_ends()? {
            return Ok(None);
        }
        let start = self.pos;
        let (mut out_len, mut n_ends) = (0usize, 0usize);
        loop {
            let buf = self.input.fill_buf()?;
            let at_eof = buf.is_empty();
            let (res, nin, nout, nend) = self.core.read_record(
                buf,
                self.out.get_mut(out_len..).unwrap_or_default(),
                self.ends.get_mut(n_ends..).unwrap_or_default(),
            );
            let lines = count_lines(buf.get(..nin).unwrap_or_default());
            self.input.consume(nin);
            self.pos.byte += nin as u64;
            self.pos.line += lines;
            out_len += nout;
            n_ends += nend;
            if self.pos.byte - start.byte > MAX_RECORD_BYTES {
                return Err(FileError::RecordTooLarge { line: start.line });
            }
            match res {
                ReadRecordResult::InputEmpty if at_eof => return Ok(None),
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = self.out.len() * 2;
                    self.out.resize(len, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= MAX_FIELDS {
                        return Err(FileError::Csv {
                            line: start.line,
                            message: format!("the record has more than {MAX_FIELDS} fields"),
                        });
                    }
                    let len = (self.ends.len() * 2).min(MAX_FIELDS);
                    self.ends.resize(len, 0);
                }
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return Ok(None),
            }
        }
        let mut fields = Vec::with_capacity(n_ends);
        let mut from = 0;
        for &end in self.ends.get(..n_ends).unwrap_or_default() {
            fields.push(decode(
                self.out.get(from..end).unwrap_or_default(),
                self.encoding,
            ));
            from = end;
        }
        // Move past the line end(s) so that `next` is the first byte of the next record.
        if let Err(e) = self.skip_line_ends() {
            self.pending = Some(e.into());
        }
        Ok(Some(Row {
            line: start.line,
            fields,
            next: self.pos,
        }))
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.expect_header
            && let Err(e) = self.headers()
        {
            return Some(Err(e));
        }
        match self.next_non_empty() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../local/tests/fixtures/contacts")
            .join(name);
        std::fs::read(&path).unwrap()
    }

    /// Hands out one byte per read, to exercise every buffer boundary.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn read_all(bytes: &[u8]) -> (Vec<String>, Vec<Row>) {
        let sniffed = sniff(bytes);
        let mut rows = CsvRows::new(bytes, &sniffed);
        let headers = rows.headers().unwrap();
        let rows: Vec<Row> = rows.map(Result::unwrap).collect();
        (headers, rows)
    }

    fn lines(rows: &[Row]) -> Vec<u64> {
        rows.iter().map(|r| r.line).collect()
    }

    /// Resuming from every row's checkpoint yields exactly the rows after it, and trickled
    /// reads give the same rows as buffered ones.
    fn assert_resumable(bytes: &[u8]) {
        let sniffed = sniff(bytes);
        let (headers, rows) = read_all(bytes);
        let mut trickled = CsvRows::new(Trickle(bytes), &sniffed);
        assert_eq!(trickled.headers().unwrap(), headers);
        assert_eq!(trickled.map(Result::unwrap).collect::<Vec<_>>(), rows);
        for (i, row) in rows.iter().enumerate() {
            let start = usize::try_from(row.next.byte).unwrap();
            let mut resumed = CsvRows::resume(&bytes[start..], &sniffed, row.next);
            assert_eq!(resumed.headers().unwrap(), Vec::<String>::new());
            let rest: Vec<Row> = resumed.map(Result::unwrap).collect();
            assert_eq!(rest, rows[i + 1..], "resuming after line {}", row.line);
            let trickled: Vec<Row> = CsvRows::resume(Trickle(&bytes[start..]), &sniffed, row.next)
                .map(Result::unwrap)
                .collect();
            assert_eq!(trickled, rows[i + 1..]);
        }
    }

    #[test]
    fn sniffs_bom_delimiters_and_quotes() {
        let s = sniff(b"\xEF\xBB\xBFa,b,c\r\n1,2,3");
        assert_eq!(
            (s.bom_len, s.delimiter, s.encoding),
            (3, b',', Encoding::Utf8)
        );
        assert_eq!(sniff(b"a;b;c\n1;2;3").delimiter, b';');
        assert_eq!(sniff(b"a\tb\tc\n").delimiter, b'\t');
        assert_eq!(sniff(b"a|b|c\n").delimiter, b'|');
        assert_eq!(sniff(b"\"x;y;z\",b,c\n1;2;3;4;5").delimiter, b',');
        assert_eq!(sniff(b"\"multi\nline;;;\";b;c\n").delimiter, b';');
        assert_eq!(sniff(b"a;b,c\n").delimiter, b',', "ties pick the comma");
        assert_eq!(sniff(b"name\n").delimiter, b',');
        assert_eq!(sniff(b"").delimiter, b',');
        assert_eq!(sniff(b"\r\n\r\na;b\n").delimiter, b';');
        assert_eq!(sniff(b"a,b").bom_len, 0);
    }

    #[test]
    fn sniffs_encoding() {
        assert_eq!(sniff("Zoë,Müller".as_bytes()).encoding, Encoding::Utf8);
        // A multibyte character cut off by the prefix's end is still UTF-8.
        assert_eq!(sniff(b"Zo\xC3").encoding, Encoding::Utf8);
        assert_eq!(sniff(b"Jos\xE9,Garc\xEDa").encoding, Encoding::Windows1252);
        assert_eq!(
            sniff(&fixture("windows1252.csv")).encoding,
            Encoding::Windows1252
        );
    }

    #[test]
    fn decodes_windows_1252() {
        assert_eq!(decode_windows_1252(b"Jos\xE9 M\xFCller"), "José Müller");
        assert_eq!(decode_windows_1252(b"\x80\x92\x93\x94\x96\x9F"), "€’“”–Ÿ");
        assert_eq!(
            decode_windows_1252(b"\x81\x8D\x8F\x90\x9D"),
            "\u{FFFD}".repeat(5)
        );
        assert_eq!(decode_windows_1252(b"\xA0\xFF"), "\u{A0}ÿ");
        // A UTF-8 file with a stray Windows-1252 byte past the sniffed prefix.
        let (_, rows) = read_all(b"a,b\nx,y\nRen\xE9e,z\n");
        assert_eq!(rows[1].fields, ["Renée", "z"]);
    }

    #[test]
    fn bom_crlf_fixture() {
        let bytes = fixture("spreadsheet_bom_crlf.csv");
        let (headers, rows) = read_all(&bytes);
        assert_eq!(
            headers,
            [
                "First Name",
                "Last Name",
                "Phone Number",
                "Email",
                "Company",
                "Tags"
            ]
        );
        assert_eq!(lines(&rows), [2, 3, 4, 6, 7, 8, 10]);
        assert_eq!(
            rows[0].fields,
            [
                "Ana",
                "Lopez",
                "(415) 555-2671",
                "ana@example.com",
                "Acme",
                "vip;west"
            ]
        );
        assert_eq!(rows[3].fields[4], "Ode, Inc.");
        assert_eq!(
            rows[5].fields,
            ["Eve", "", "+44 20 7946 0958", "eve@example.co.uk", "", "uk"]
        );
        assert_eq!(
            rows[6].fields[..5],
            [
                "Zoë",
                "Müller",
                "+49 30 901820",
                "zoe@example.de",
                "Bäckerei"
            ]
        );
        assert_eq!(
            rows[6].next,
            Checkpoint {
                byte: bytes.len() as u64,
                line: 11
            }
        );
        assert_resumable(&bytes);
    }

    #[test]
    fn semicolon_fixture() {
        let bytes = fixture("semicolon.csv");
        assert_eq!(sniff(&bytes).delimiter, b';');
        let (headers, rows) = read_all(&bytes);
        assert_eq!(
            headers,
            ["first_name", "last_name", "mobile", "e_mail", "company"]
        );
        assert_eq!(lines(&rows), [2, 3, 4, 5, 6]);
        assert_eq!(rows[0].fields[4], "Smith; Sons");
        assert_eq!(rows[3].fields[2], "");
        assert_resumable(&bytes);
    }

    #[test]
    fn quoted_newlines_fixture() {
        let bytes = fixture("quoted_newlines.csv");
        let (_, rows) = read_all(&bytes);
        assert_eq!(lines(&rows), [2, 3, 4, 6]);
        assert_eq!(rows[0].fields[2], "Prefers mornings, before 10am");
        assert_eq!(rows[1].fields[2], "She said \"call me\"");
        assert_eq!(rows[2].fields[2], "Line one\nLine two, with a comma");
        assert_eq!(rows[2].next.line, 6);
        assert_eq!(
            rows[3].fields,
            [
                "Olivia Stone",
                "415-555-2704",
                "No notes",
                "olivia@example.com"
            ]
        );
        assert_resumable(&bytes);
    }

    #[test]
    fn windows1252_fixture() {
        let bytes = fixture("windows1252.csv");
        let (_, rows) = read_all(&bytes);
        let names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.fields[0].as_str(), r.fields[1].as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("José", "García"),
                ("François", "Müller"),
                ("Renée", "O’Brien")
            ]
        );
        assert_eq!(lines(&rows), [2, 3, 4]);
        assert_resumable(&bytes);
    }

    #[test]
    fn blank_lines_and_empty_records_keep_line_numbers() {
        let bytes = b"\n\nh1,h2\r\n\r\n\r\na,1\n,,\n  ,  \n\"\",\"\"\nb,\"x\r\ny\"\r\n\n\nc,3";
        let (headers, rows) = read_all(bytes);
        assert_eq!(headers, ["h1", "h2"]);
        assert_eq!(lines(&rows), [6, 10, 14]);
        assert_eq!(rows[1].fields, ["b", "x\r\ny"]);
        assert_eq!(
            rows[2].next,
            Checkpoint {
                byte: bytes.len() as u64,
                line: 14
            }
        );
        assert_resumable(bytes);
        // Mixed line ends, a lone CR ending a record, a trailing blank line.
        let bytes = b"h\ra\r\nb\n\rc\r\r\n";
        let (headers, rows) = read_all(bytes);
        assert_eq!(headers, ["h"]);
        assert_eq!(
            rows.iter()
                .map(|r| r.fields[0].as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_resumable(bytes);
    }

    #[test]
    fn ragged_rows_and_stray_cr() {
        let (_, rows) = read_all(b"a,b,c\n1\n1,2,3,4\n x ,\"y\r\"\n");
        assert_eq!(rows[0].fields, ["1"]);
        assert_eq!(rows[1].fields, ["1", "2", "3", "4"]);
        assert_eq!(rows[2].fields, ["x", "y"]);
    }

    #[test]
    fn bom_is_skipped_and_counted() {
        let bytes = b"\xEF\xBB\xBFphone\r\n555\r\n";
        let (headers, rows) = read_all(bytes);
        assert_eq!(headers, ["phone"]);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].next, Checkpoint { byte: 15, line: 3 });
        // A stream without the BOM the sniff saw (the caller consumed it) is not cut.
        let sniffed = sniff(bytes);
        let mut rows = CsvRows::new(&bytes[3..], &sniffed);
        assert_eq!(rows.headers().unwrap(), ["phone"]);
    }

    #[test]
    fn empty_file_has_no_header() {
        for bytes in [&b""[..], b"\r\n\r\n", b",,,\n \n"] {
            let sniffed = sniff(bytes);
            let mut rows = CsvRows::new(bytes, &sniffed);
            assert!(matches!(rows.headers(), Err(FileError::NoHeader)));
            let mut rows = CsvRows::new(bytes, &sniffed);
            assert!(matches!(rows.next(), Some(Err(FileError::NoHeader))));
            assert!(rows.next().is_none());
        }
        let (headers, rows) = read_all(b"only,a,header\r\n");
        assert_eq!(headers.len(), 3);
        assert!(rows.is_empty());
    }

    #[test]
    fn oversized_record_ends_the_stream() {
        let mut bytes = b"name,notes\nok,1\n".to_vec();
        bytes.extend_from_slice(b"big,\"");
        bytes.resize(bytes.len() + (MAX_RECORD_BYTES as usize) + 10, b'x');
        bytes.extend_from_slice(b"\"\nafter,2\n");
        let sniffed = sniff(&bytes);
        let mut rows = CsvRows::new(&bytes[..], &sniffed);
        assert_eq!(rows.headers().unwrap(), ["name", "notes"]);
        assert_eq!(rows.next().unwrap().unwrap().line, 2);
        assert!(matches!(
            rows.next(),
            Some(Err(FileError::RecordTooLarge { line: 3 }))
        ));
        assert!(rows.next().is_none());
        // Just under the limit is fine.
        let mut bytes = b"n\n".to_vec();
        bytes.resize(bytes.len() + (MAX_RECORD_BYTES as usize) - 1, b'y');
        let (_, rows) = read_all(&bytes);
        assert_eq!(rows[0].fields[0].len(), MAX_RECORD_BYTES as usize - 1);
    }

    #[test]
    fn too_many_fields_is_an_error() {
        let mut bytes = b"a\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 1).chain(std::iter::repeat_n(b',', MAX_FIELDS)));
        let sniffed = sniff(&bytes);
        let mut rows = CsvRows::new(&bytes[..], &sniffed);
        rows.headers().unwrap();
        assert!(matches!(
            rows.next(),
            Some(Err(FileError::Csv { line: 2, .. }))
        ));
        let mut bytes = b"a\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 1).chain(std::iter::repeat_n(b',', MAX_FIELDS - 1)));
        let (_, rows) = read_all(&bytes);
        assert_eq!(rows[0].fields.len(), MAX_FIELDS);
    }

    #[test]
    fn checkpoint_serde_round_trip() {
        let c = Checkpoint { byte: 12, line: 3 };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"byte":12,"line":3}"#);
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), c);
    }

    #[test]
    fn io_errors_surface() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("boom"))
            }
        }
        let sniffed = sniff(b"a,b");
        let mut rows = CsvRows::new(Failing, &sniffed);
        assert!(matches!(rows.next(), Some(Err(FileError::Io(_)))));
        assert!(rows.next().is_none());
    }
}
