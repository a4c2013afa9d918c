//! SSML for Azure Speech, built from escaped values only: the caller's text and the voice
//! name never become markup.

use std::fmt::Write as _;

/// Escapes `text` for an XML text node or a single- or double-quoted attribute value.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `name` looks like an Azure voice short name (`en-US-AriaNeural`,
/// `zh-CN-shaanxi-XiaoniNeural`): letters, digits and `-`, starting with a locale.
pub fn is_azure_voice_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    (3..=5).contains(&parts.len())
        && name.len() <= 80
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        && parts[0].len() >= 2
        && parts[0].len() <= 3
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
}

/// The locale a voice name starts with (`en-US` of `en-US-AriaNeural`).
pub fn locale_of(voice: &str) -> Option<String> {
    let mut parts = voice.splitn(3, '-');
    let language = parts.next()?;
    let region = parts.next()?;
    Some(format!("{language}-{region}"))
}

/// Prosody as relative changes: `speed` a multiplier (1.0 = normal), `pitch` and `volume`
/// percentages (0 = unchanged).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prosody {
    pub speed: f64,
    pub pitch_percent: f64,
    pub volume_percent: f64,
}

impl Default for Prosody {
    fn default() -> Self {
        Self {
            speed: 1.0,
            pitch_percent: 0.0,
            volume_percent: 0.0,
        }
    }
}

fn signed_percent(value: f64) -> String {
    let rounded = value.round() as i64;
    if rounded >= 0 {
        format!("+{rounded}%")
    } else {
        format!("{rounded}%")
    }
}

/// The SSML document Azure's REST API takes for `text` in `voice` with `prosody`.
pub fn azure_ssml(text: &str, voice: &str, language: &str, prosody: Prosody) -> String {
    let mut ssml = String::with_capacity(text.len() + 256);
    let _ = write!(
        ssml,
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='{}'><voice name='{}'>",
        escape_xml(language),
        escape_xml(voice)
    );
    let plain = prosody == Prosody::default();
    if !plain {
        let _ = write!(
            ssml,
            "<prosody rate='{}' pitch='{}' volume='{}'>",
            signed_percent((prosody.speed - 1.0) * 100.0),
            signed_percent(prosody.pitch_percent),
            signed_percent(prosody.volume_percent)
        );
    }
    ssml.push_str(&escape_xml(text));
    if !plain {
        ssml.push_str("</prosody>");
    }
    ssml.push_str("</voice></speak>");
    ssml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_stays_text() {
        let hostile = "Hi</voice><voice name='evil'>&amp; <break time=\"9s\"/>";
        let ssml = azure_ssml(hostile, "en-US-AriaNeural", "en-US", Prosody::default());
        assert_eq!(
            ssml,
            "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'><voice name='en-US-AriaNeural'>Hi&lt;/voice&gt;&lt;voice name=&apos;evil&apos;&gt;&amp;amp; &lt;break time=&quot;9s&quot;/&gt;</voice></speak>"
        );
        assert_eq!(ssml.matches("<voice").count(), 1);
    }

    #[test]
    fn prosody_is_relative_and_only_when_asked() {
        let ssml = azure_ssml(
            "Hello",
            "en-US-AriaNeural",
            "en-US",
            Prosody {
                speed: 1.25,
                pitch_percent: -10.0,
                volume_percent: 0.0,
            },
        );
        assert!(ssml.contains("<prosody rate='+25%' pitch='-10%' volume='+0%'>Hello</prosody>"));
    }

    #[test]
    fn voice_names_are_checked() {
        assert!(is_azure_voice_name("en-US-AriaNeural"));
        assert!(is_azure_voice_name("zh-CN-shaanxi-XiaoniNeural"));
        assert!(!is_azure_voice_name("en-US-Aria'/><x"));
        assert!(!is_azure_voice_name("Rachel"));
        assert!(!is_azure_voice_name("EN-US-AriaNeural"));
        assert_eq!(locale_of("en-GB-SoniaNeural").as_deref(), Some("en-GB"));
    }
}
