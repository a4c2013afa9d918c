//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1,
//! 6 digits, 30-second steps, as used by authenticator apps.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use qrcode::QrCode;
use qrcode::render::svg;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Length of a new secret in bytes (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;
/// Number of digits of a code.
pub const DIGITS: usize = 6;
/// Length of a time step in seconds.
pub const PERIOD_SECONDS: i64 = 30;

/// RFC 4648 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A QR code could not be produced (in practice: the text is too long).
#[derive(Debug, thiserror::Error)]
#[error("could not render the QR code: {0}")]
pub struct QrError(#[from] qrcode::types::QrError);

/// A fresh random 20-byte TOTP secret.
///
/// # Panics
///
/// When the operating system's random number generator fails.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_LEN];
    getrandom::fill(&mut secret).expect("the operating system's random number generator failed");
    secret
}

/// RFC 4648 base32, upper-case, without `=` padding (the form authenticator
/// apps expect).
pub fn encode_base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[usize::from((buffer >> bits) & 0x1f)],
            ));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// Decodes RFC 4648 base32, ignoring case, whitespace and `=`; `None` on any
/// other character or on a length no encoder could produce.
pub fn decode_base32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    let mut chars = 0usize;
    for c in s.chars() {
        let value = match c {
            'A'..='Z' => c as u8 - b'A',
            'a'..='z' => c as u8 - b'a',
            '2'..='7' => c as u8 - b'2' + 26,
            '=' => continue,
            c if c.is_whitespace() => continue,
            _ => return None,
        };
        chars += 1;
        buffer = (buffer << 5) | u16::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            // Truncation keeps exactly the completed byte.
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // 1, 3 or 6 trailing characters cannot encode whole bytes.
    match chars % 8 {
        1 | 3 | 6 => None,
        _ => Some(out),
    }
}

/// The time step containing `unix_seconds` (0 before the epoch).
pub fn step_of(unix_seconds: i64) -> u64 {
    u64::try_from(unix_seconds.div_euclid(PERIOD_SECONDS)).unwrap_or(0)
}

/// The 6-digit code (zero-padded) of `secret` for time step `step`
/// (RFC 4226 HOTP with the step as counter).
pub fn code_at(secret: &[u8], step: u64) -> String {
    format!("{:0width$}", hotp(secret, step), width = DIGITS)
}

/// RFC 4226 HOTP value, reduced to [`DIGITS`] digits.
fn hotp(secret: &[u8], counter: u64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    value % 10u32.pow(DIGITS as u32)
}

/// Checks `code` (6 ASCII digits; spaces anywhere are ignored) against the
/// steps around `unix_seconds` (±1 step of clock drift). Returns the matched
/// step, only if it is later than `last_used_step`: the caller stores it so
/// each code is accepted once. Codes are compared in constant time.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_seconds: i64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_seconds);
    let candidates = [now.checked_sub(1), Some(now), now.checked_add(1)];
    let mut matched = None;
    // Every candidate is computed and compared, whatever matches first.
    for step in candidates.into_iter().flatten() {
        let expected = code_at(secret, step);
        let equal = bool::from(expected.as_bytes().ct_eq(code.as_bytes()));
        if equal && last_used_step.is_none_or(|last| step > last) {
            matched = Some(step);
        }
    }
    matched
}

/// The `otpauth://` URI authenticator apps scan:
/// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`,
/// with issuer and account percent-encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECONDS}",
        account = percent_encode(account),
        secret = percent_encode(secret_b32),
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Renders `text` as a QR code in SVG and returns it as a
/// `data:image/svg+xml;base64,…` URL, ready for an `<img src>`.
pub fn qr_data_url(text: &str) -> Result<String, QrError> {
    let code = QrCode::new(text.as_bytes())?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(image)
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B secret for SHA1.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        let vectors: [(i64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, eight_digits) in vectors {
            assert_eq!(
                code_at(RFC_SECRET, step_of(time)),
                eight_digits[2..],
                "t={time}"
            );
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_at(RFC_SECRET, counter as u64), *code);
        }
    }

    #[test]
    fn steps() {
        assert_eq!(step_of(0), 0);
        assert_eq!(step_of(29), 0);
        assert_eq!(step_of(30), 1);
        assert_eq!(step_of(59), 1);
        assert_eq!(step_of(-1), 0);
    }

    #[test]
    fn drift_window() {
        let t = 1_234_567_890;
        let step = step_of(t);
        for delta in [-1i64, 0, 1] {
            let s = step.checked_add_signed(delta).unwrap();
            assert_eq!(
                verify(RFC_SECRET, &code_at(RFC_SECRET, s), t, None),
                Some(s)
            );
        }
        for delta in [-2i64, 2] {
            let s = step.checked_add_signed(delta).unwrap();
            assert_eq!(verify(RFC_SECRET, &code_at(RFC_SECRET, s), t, None), None);
        }
    }

    #[test]
    fn replay_is_refused() {
        let t = 1_234_567_890;
        let step = step_of(t);
        let code = code_at(RFC_SECRET, step);
        assert_eq!(verify(RFC_SECRET, &code, t, None), Some(step));
        assert_eq!(verify(RFC_SECRET, &code, t, Some(step)), None);
        assert_eq!(verify(RFC_SECRET, &code, t + 30, Some(step)), None);
        assert_eq!(verify(RFC_SECRET, &code, t, Some(step - 1)), Some(step));
        // An older code is refused once a newer one was used.
        let previous = code_at(RFC_SECRET, step - 1);
        assert_eq!(verify(RFC_SECRET, &previous, t, Some(step)), None);
    }

    #[test]
    fn code_format() {
        let t = 1_234_567_890;
        let code = code_at(RFC_SECRET, step_of(t));
        assert_eq!(code, "005924");
        assert_eq!(verify(RFC_SECRET, " 005 924 ", t, None), Some(step_of(t)));
        assert_eq!(verify(RFC_SECRET, "5924", t, None), None);
        assert_eq!(verify(RFC_SECRET, "0059240", t, None), None);
        assert_eq!(verify(RFC_SECRET, "00592a", t, None), None);
        assert_eq!(verify(RFC_SECRET, "٠٠٥٩٢٤", t, None), None);
        assert_eq!(verify(RFC_SECRET, "", t, None), None);
        assert_eq!(verify(RFC_SECRET, "005924", 0, None), None);
    }

    #[test]
    fn base32_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode_base32(plain.as_bytes()), encoded);
            assert_eq!(decode_base32(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode_base32("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert_eq!(decode_base32("MZXW6YTB0I"), None);
        assert_eq!(decode_base32("MZXW6YTBO"), None);
    }

    #[test]
    fn base32_round_trip() {
        for len in 0..=40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode_base32(&encode_base32(&bytes)).unwrap(), bytes);
        }
        let secret = new_secret();
        assert_eq!(secret.len(), 20);
        let encoded = encode_base32(&secret);
        assert_eq!(encoded.len(), 32);
        assert_eq!(decode_base32(&encoded.to_lowercase()).unwrap(), secret);
    }

    #[test]
    fn uri() {
        assert_eq!(
            otpauth_uri("Vocelio", "alice@example.com", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/Vocelio:alice%40example.com?secret=JBSWY3DPEHPK3PXP\
             &issuer=Vocelio&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri("Acme & Co", "bob:é", "AB"),
            "otpauth://totp/Acme%20%26%20Co:bob%3A%C3%A9?secret=AB\
             &issuer=Acme%20%26%20Co&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn qr_code() {
        let uri = otpauth_uri(
            "Vocelio",
            "alice@example.com",
            &encode_base32(&new_secret()),
        );
        let url = qr_data_url(&uri).unwrap();
        let payload = url.strip_prefix("data:image/svg+xml;base64,").unwrap();
        let svg = String::from_utf8(STANDARD.decode(payload).unwrap()).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(qr_data_url(&"x".repeat(10_000)).is_err());
    }
}
