//! Password hashing (Argon2id), password strength rules, backup codes and
//! random tokens.

use std::fmt::Write as _;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Argon2id memory cost in KiB (OWASP recommendation: 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id number of passes over memory.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id degree of parallelism (lanes).
pub const ARGON2_PARALLELISM: u32 = 1;

/// Length of the random salt of a password hash, in bytes.
const SALT_LEN: usize = 16;

/// Minimum password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Maximum password length, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Maximum password length, in bytes of UTF-8.
pub const MAX_PASSWORD_BYTES: usize = 512;
/// Lowest accepted zxcvbn score (0 to 4).
const MIN_ZXCVBN_SCORE: u8 = 3;

/// Number of backup codes handed out at once.
pub const BACKUP_CODE_COUNT: usize = 10;
/// Number of significant characters of a backup code (the dash excluded).
const BACKUP_CODE_CHARS: usize = 10;
/// Backup code alphabet: lowercase letters and digits without the lookalikes
/// `0`, `o`, `1`, `l` and `i`.
const BACKUP_CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The operating system's random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(getrandom::Error),
    /// Argon2 refused the input or its parameters.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Why a password is refused; the message can be shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must be at least {min} characters long")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More than [`MAX_PASSWORD_CHARS`] characters or [`MAX_PASSWORD_BYTES`] bytes.
    #[error("the password must be at most {max} characters long")]
    TooLong {
        /// The maximum number of characters.
        max: usize,
    },
    /// zxcvbn estimates the password would be guessed too quickly.
    #[error("the password is too easy to guess{}", with_colon(.feedback))]
    TooGuessable {
        /// zxcvbn's score, 0 to 4.
        score: u8,
        /// zxcvbn's warning and suggestions, in English; may be empty.
        feedback: String,
    },
}

/// `": text"`, or nothing when `text` is empty.
fn with_colon(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The Argon2id hasher with the parameters above.
fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|e| PasswordError::Hash(e.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with `salt` into a PHC string.
fn hash_with_salt(password: &str, salt: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(PasswordError::Hash)?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Hashes a password with Argon2id (m=19456 KiB, t=2, p=1) and a fresh 16-byte
/// random salt, returning the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(PasswordError::Random)?;
    hash_with_salt(password, &salt)
}

/// Whether `password` matches the PHC string `phc`; false when `phc` is
/// malformed. The final comparison is constant-time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The parameters are read from the hash; the hasher's own are not used.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Verifies `password` against a fixed dummy hash with the production
/// parameters, and discards the result: call it when the account does not
/// exist so that an unknown email costs as much time as a wrong password.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    // A fixed salt is fine: nothing secret is ever checked against this hash.
    let dummy = DUMMY
        .get_or_init(|| hash_with_salt("not the password of any account", &[0x5a; SALT_LEN]).ok());
    if let Some(dummy) = dummy {
        std::hint::black_box(verify_password(password, dummy));
    }
}

/// Checks that a new password is acceptable: 8 to 128 characters (at most 512
/// bytes) and a zxcvbn score of at least 3. `user_inputs` are words the user
/// is known by (email, names, organisation, subdomain) that must not make up
/// the password.
pub fn check_strength(password: &str, user_inputs: &[&str]) -> Result<(), WeakPassword> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(WeakPassword::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }

    let inputs: Vec<&str> = user_inputs
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    let score = u8::from(entropy.score());
    if score >= MIN_ZXCVBN_SCORE {
        return Ok(());
    }

    let mut feedback = Vec::new();
    if let Some(fb) = entropy.feedback() {
        if let Some(warning) = fb.warning() {
            feedback.push(warning.to_string());
        }
        feedback.extend(fb.suggestions().iter().map(ToString::to_string));
    }
    Err(WeakPassword::TooGuessable {
        score,
        feedback: feedback.join(" "),
    })
}

/// Fills `buf` from the operating system's random number generator.
///
/// # Panics
///
/// When the generator fails, which on Linux only happens if the kernel
/// refuses `getrandom(2)`; nothing sensible can be done then.
fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// Ten fresh single-use backup codes, formatted `xxxxx-xxxxx` from an alphabet
/// of 31 unambiguous characters (about 49.5 bits each), all distinct.
///
/// # Panics
///
/// When the operating system's random number generator fails.
pub fn new_backup_codes() -> Vec<String> {
    let mut codes = Vec::with_capacity(BACKUP_CODE_COUNT);
    while codes.len() < BACKUP_CODE_COUNT {
        let code = new_backup_code();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// One backup code, `xxxxx-xxxxx`.
fn new_backup_code() -> String {
    // Rejection sampling keeps every character equally likely.
    let alphabet_len = BACKUP_CODE_ALPHABET.len();
    let limit = 256 - 256 % alphabet_len;
    let mut chars = Vec::with_capacity(BACKUP_CODE_CHARS);
    let mut buf = [0u8; 32];
    while chars.len() < BACKUP_CODE_CHARS {
        fill_random(&mut buf);
        for &b in &buf {
            if usize::from(b) < limit && chars.len() < BACKUP_CODE_CHARS {
                chars.push(BACKUP_CODE_ALPHABET[usize::from(b) % alphabet_len]);
            }
        }
    }
    let (left, right) = chars.split_at(BACKUP_CODE_CHARS / 2);
    format!(
        "{}-{}",
        String::from_utf8_lossy(left),
        String::from_utf8_lossy(right)
    )
}

/// A backup code as typed by a user, canonicalised: lower-cased, with dashes
/// and whitespace removed.
pub fn normalise_backup_code(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored for a backup code: hex of HMAC-SHA256 keyed with `user_id`
/// over the normalised code, so a code only matches for its own user.
pub fn hash_backup_code(user_id: &str, code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(user_id.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(normalise_backup_code(code).as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// `prefix` followed by `bytes` random bytes in base64url without padding,
/// for refresh tokens, API keys and the like.
///
/// # Panics
///
/// When the operating system's random number generator fails.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    let mut token = String::with_capacity(prefix.len() + bytes.div_ceil(3) * 4);
    token.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(&buf, &mut token);
    token
}

/// Lower-case hex of the SHA-256 of `s` (to store tokens without storing them).
pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password("same password").unwrap();
        let b = hash_password("same password").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_hash_is_refused() {
        assert!(!verify_password("x", ""));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("x", "$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify_password(
            "x",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$"
        ));
    }

    #[test]
    fn dummy_verification_runs() {
        verify_against_dummy("whatever");
        verify_against_dummy("whatever again");
    }

    #[test]
    fn weak_passwords_are_refused() {
        for pw in ["password", "12345678", "Password1"] {
            let err = check_strength(pw, &[]).unwrap_err();
            assert!(
                matches!(err, WeakPassword::TooGuessable { .. }),
                "{pw}: {err}"
            );
        }
        let err = check_strength("acme-corp2024", &["acme-corp"]).unwrap_err();
        assert!(matches!(err, WeakPassword::TooGuessable { .. }), "{err}");
    }

    #[test]
    fn weak_password_message_has_feedback() {
        let err = check_strength("password", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("the password is too easy to guess: "),
            "{msg}"
        );
        assert!(msg.contains("top-10"), "{msg}");
    }

    #[test]
    fn strong_passwords_are_accepted() {
        check_strength("correct horse battery staple 42", &["alice@example.com"]).unwrap();
        check_strength("q7#Vb9!zLm2@xR4w", &[]).unwrap();
    }

    #[test]
    fn length_limits() {
        assert_eq!(
            check_strength("q7#Vb9!", &[]),
            Err(WeakPassword::TooShort { min: 8 })
        );
        // Eight characters but more than eight bytes still counts as eight.
        assert!(!matches!(
            check_strength("éàèùçôîê", &[]),
            Err(WeakPassword::TooShort { .. })
        ));
        let long = "q7#Vb9!zLm2@xR4w".repeat(9);
        assert_eq!(
            check_strength(&long, &[]),
            Err(WeakPassword::TooLong { max: 128 })
        );
        assert_eq!(
            check_strength(&"€".repeat(129), &[]),
            Err(WeakPassword::TooLong { max: 128 })
        );
        assert!(!matches!(
            check_strength(&"€".repeat(128), &[]),
            Err(WeakPassword::TooLong { .. })
        ));
        assert_eq!(
            WeakPassword::TooShort { min: 8 }.to_string(),
            "the password must be at least 8 characters long"
        );
    }

    #[test]
    fn backup_codes_format() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            let (left, right) = code.split_once('-').unwrap();
            assert_eq!(left.len(), 5);
            assert_eq!(right.len(), 5);
            assert!(
                left.bytes()
                    .chain(right.bytes())
                    .all(|b| BACKUP_CODE_ALPHABET.contains(&b)),
                "{code}"
            );
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert!(!BACKUP_CODE_ALPHABET.iter().any(|b| b"0o1li".contains(b)));
    }

    #[test]
    fn backup_code_hash_normalises() {
        let h = hash_backup_code("user-1", "abcde-fghjk");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_backup_code("user-1", "ABCDEFGHJK"));
        assert_eq!(h, hash_backup_code("user-1", " abcde fghjk "));
        assert_ne!(h, hash_backup_code("user-2", "abcde-fghjk"));
        assert_ne!(h, hash_backup_code("user-1", "abcde-fghjm"));
        assert_eq!(normalise_backup_code(" AbCdE-FgHjK\n"), "abcdefghjk");
    }

    #[test]
    fn tokens() {
        let t = random_token("rt_", 32);
        assert!(t.starts_with("rt_"));
        assert_eq!(t.len(), 3 + 43);
        assert!(
            t[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(random_token("rt_", 32), t);
        assert_eq!(random_token("x", 0), "x");
    }

    #[test]
    fn sha256_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
