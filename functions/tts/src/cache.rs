//! Content-addressed audio keys: the same words in the same voice, settings and format map
//! to the same S3 object, so they are synthesized and paid for once.

use sha2::{Digest, Sha256};

use crate::formats::AudioFormat;

/// What determines the audio — and whose cache it is; everything else (customer, call)
/// does not.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioIdentity<'a> {
    /// Whose cache: the tenant (so one tenant cannot probe which words another
    /// synthesized), or `shared` for fixed texts such as voice previews.
    pub scope: &'a str,
    pub provider: &'a str,
    pub voice_id: &'a str,
    pub model: &'a str,
    pub format: AudioFormat,
    pub speed: f64,
    pub pitch_percent: f64,
    pub volume_percent: f64,
    /// The language sent with the text (SSML `xml:lang`, `language_code`), lowercase.
    pub language: &'a str,
    pub text: &'a str,
}

/// Text as it is synthesized: trimmed, runs of whitespace as one space, NFC-agnostic
/// (callers send what they send; equal strings give equal keys).
pub fn normalize_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn safe(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The S3 key of `identity`'s audio: `tts/<provider>/<voice>/<sha256>.<ext>`.
pub fn object_key(identity: &AudioIdentity<'_>) -> String {
    let mut hash = Sha256::new();
    for part in [
        identity.scope,
        identity.provider,
        identity.voice_id,
        identity.model,
        identity.format.as_str(),
        &format!("{:.3}", identity.speed),
        &format!("{:.1}", identity.pitch_percent),
        &format!("{:.1}", identity.volume_percent),
        identity.language,
        &normalize_text(identity.text),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "tts/{}/{}/{digest}.{}",
        safe(identity.provider),
        safe(identity.voice_id),
        identity.format.extension()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(text: &str) -> AudioIdentity<'_> {
        AudioIdentity {
            scope: "acme",
            provider: "azure",
            voice_id: "en-US-AriaNeural",
            model: "neural",
            format: AudioFormat::Mp3,
            speed: 1.0,
            pitch_percent: 0.0,
            volume_percent: 0.0,
            language: "en-us",
            text,
        }
    }

    #[test]
    fn same_words_same_key_and_every_setting_counts() {
        let a = object_key(&identity("Hello   world "));
        assert_eq!(a, object_key(&identity("Hello world")));
        assert!(a.starts_with("tts/azure/en-US-AriaNeural/"));
        assert!(a.ends_with(".mp3"));
        let mut faster = identity("Hello world");
        faster.speed = 1.1;
        assert_ne!(a, object_key(&faster));
        let mut wav = identity("Hello world");
        wav.format = AudioFormat::MulawWav;
        assert_ne!(a, object_key(&wav));
        let mut voice = identity("Hello world");
        voice.voice_id = "../../etc/passwd";
        assert!(object_key(&voice).starts_with("tts/azure/.._.._etc_passwd/"));
    }
}
