//! Phone numbers as people type them, normalised to E.164.
//!
//! `+1 (555) 123-4567`, `555-123-4567` (in the default region) and vanity numbers such as
//! `+1555-SALES-01` (letters mapped by the phone keypad) all become `+1...`. The check is
//! libphonenumber's *possible-number* test (right country code, a length that numbers of
//! that country have), not its stricter validity test: 555 numbers are reserved for
//! fiction, so a validity test would refuse the app's own examples.

use std::fmt;

use phonenumber::Mode;
pub use phonenumber::country::Id as Region;
use phonenumber::metadata::DATABASE;
use serde::{Deserialize, Serialize};

/// The longest input accepted before parsing (formatting characters included).
const MAX_INPUT_LEN: usize = 40;

/// A phone number in E.164 form (`+15551234567`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct E164(String);

impl E164 {
    /// The number as `+<country code><national number>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a phone number; the message completes "phone number ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must not be empty")]
    Empty,
    #[error("is too long to be a phone number")]
    TooLong,
    #[error("may contain only digits, letters, spaces, '+', '-', '.', '/' and parentheses")]
    BadCharacters,
    #[error("cannot be read as a phone number")]
    Unparseable,
    #[error("has an unknown country calling code")]
    UnknownCountryCode,
    #[error(
        "has {digits} digits after the country code, but numbers of +{country_code} have {expected}"
    )]
    ImpossibleLength {
        country_code: u16,
        digits: usize,
        expected: String,
    },
}

/// Maps a keypad letter to its digit (`ABC` -> 2 ... `WXYZ` -> 9).
fn keypad_digit(letter: char) -> Option<char> {
    let digit = match letter.to_ascii_uppercase() {
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        'W'..='Z' => '9',
        _ => return None,
    };
    Some(digit)
}

/// The national-number lengths of every dialable kind of number in a region (the general
/// descriptor leaves them empty in the compiled metadata).
fn possible_lengths(metadata: &phonenumber::Metadata) -> Vec<usize> {
    use phonenumber::Type;
    let descriptors = metadata.descriptors();
    let mut lengths: Vec<usize> = [
        Type::Unknown,
        Type::FixedLine,
        Type::Mobile,
        Type::TollFree,
        Type::PremiumRate,
        Type::SharedCost,
        Type::PersonalNumber,
        Type::Voip,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ]
    .into_iter()
    .filter_map(|kind| descriptors.get(kind))
    .flat_map(|d| d.possible_length().iter().map(|&n| usize::from(n)))
    .collect();
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

/// The kind of a number, as libphonenumber classifies it.
pub use phonenumber::Type as NumberKind;

/// The country calling code and the kind of an E.164 number (`None` when it does not
/// parse). A number that matches no pattern of its country is [`NumberKind::Unknown`].
pub fn classify(e164: &str) -> Option<(u16, NumberKind)> {
    let number = phonenumber::parse(None, e164).ok()?;
    Some((number.code().value(), number.number_type(&DATABASE)))
}

/// The country (ISO 3166 alpha-2) and kind of a number that is valid in that country
/// (`None` for a number that only has a possible length, or no country).
pub fn classify_valid(e164: &str) -> Option<(String, NumberKind)> {
    let number = phonenumber::parse(None, e164).ok()?;
    if !number.is_valid() {
        return None;
    }
    let region = number.country().id()?;
    Some((region.as_ref().to_owned(), number.number_type(&DATABASE)))
}

/// The country calling code of a region (`US` → 1), for matching typed prefixes.
pub fn country_code(region: Region) -> Option<u16> {
    DATABASE
        .by_id(region.as_ref())
        .map(phonenumber::Metadata::country_code)
}

/// Normalises a typed phone number to E.164, reading numbers without `+` in `default_region`.
pub fn normalize(input: &str, default_region: Region) -> Result<E164, PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    if trimmed.chars().count() > MAX_INPUT_LEN {
        return Err(PhoneError::TooLong);
    }
    let mut mapped = String::with_capacity(trimmed.len());
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '0'..='9' => mapped.push(c),
            '+' if i == 0 => mapped.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_ascii_alphabetic() => {
                mapped.push(keypad_digit(c).ok_or(PhoneError::BadCharacters)?)
            }
            _ => return Err(PhoneError::BadCharacters),
        }
    }
    if !mapped.bytes().any(|b| b.is_ascii_digit()) {
        return Err(PhoneError::Unparseable);
    }
    let number = phonenumber::parse(Some(default_region), &mapped).map_err(|e| match e {
        phonenumber::ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode,
        _ => PhoneError::Unparseable,
    })?;
    let country_code = number.code().value();
    let metadata = DATABASE
        .by_code(&country_code)
        .and_then(|all| {
            let main = all
                .iter()
                .position(|m| m.is_main_country_for_code())
                .unwrap_or(0);
            all.get(main).copied()
        })
        .ok_or(PhoneError::UnknownCountryCode)?;
    let national = number.national().to_string();
    let possible = possible_lengths(metadata);
    let digits = national.len();
    let fits = possible.contains(&digits);
    if !fits {
        let expected = possible
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(PhoneError::ImpossibleLength {
            country_code,
            digits,
            expected,
        });
    }
    Ok(E164(number.format().mode(Mode::E164).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(input: &str) -> Result<String, PhoneError> {
        normalize(input, Region::US).map(|n| n.0)
    }

    #[test]
    fn the_apps_examples_normalise() {
        assert_eq!(us("+1 (555) 123-4567").unwrap(), "+15551234567");
        assert_eq!(us("555-123-4567").unwrap(), "+15551234567");
        assert_eq!(us("(555) 123 4567").unwrap(), "+15551234567");
        assert_eq!(us(" +1.555.123.4567 ").unwrap(), "+15551234567");
    }

    #[test]
    fn keypad_letters_map_to_digits() {
        // S=7 A=2 L=5 E=3 S=7
        assert_eq!(us("+1555-SALES-01").unwrap(), "+15557253701");
        assert_eq!(us("1-800-FLOWERS").unwrap(), "+18003569377");
    }

    #[test]
    fn other_regions_and_default_region() {
        assert_eq!(us("+44 20 7946 0958").unwrap(), "+442079460958");
        assert_eq!(
            normalize("020 7946 0958", Region::GB).unwrap().0,
            "+442079460958"
        );
    }

    #[test]
    fn impossible_numbers_are_refused() {
        // The telephony seed's example: +1 with only 9 national digits.
        assert!(matches!(
            us("+1234567890"),
            Err(PhoneError::ImpossibleLength { .. })
        ));
        assert_eq!(us(""), Err(PhoneError::Empty));
        assert_eq!(us("   "), Err(PhoneError::Empty));
        assert_eq!(
            us("+1 555 123 4567 <script>"),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(us("555#1234"), Err(PhoneError::BadCharacters));
        assert!(us("12").is_err());
        assert!(us("+999 1234567").is_err());
        assert!(us(&"5".repeat(41)).is_err());
        assert!(us("++15551234567").is_err());
    }
}
