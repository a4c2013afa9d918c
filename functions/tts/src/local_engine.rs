//! The local engine: espeak-ng, so the product speaks with no cloud keys. Text goes in on
//! stdin (never as an argument, never as markup: SSML parsing stays off), 16-bit PCM WAV
//! comes out on stdout.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::ssml::Prosody;
use crate::wav::{Pcm, WavError, read_pcm16};

/// Why the local engine could not speak.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "espeak-ng is not installed ({0}); `cargo run -p vocelio-local -- install` installs it"
    )]
    Missing(std::io::Error),
    #[error("espeak-ng failed: {0}")]
    Failed(String),
    #[error("espeak-ng wrote no audio: {0}")]
    BadOutput(#[from] WavError),
    #[error("unknown local voice {0:?}")]
    UnknownVoice(String),
}

/// A voice of the local engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVoice {
    /// espeak-ng's language code, used as the voice id (`en-us`).
    pub id: String,
    /// Its name (`English_(America)` → `English (America)`).
    pub name: String,
    /// `M` or `F` as espeak-ng lists it.
    pub gender: String,
}

/// espeak-ng at `program` (`espeak-ng` on the PATH by default).
#[derive(Debug, Clone)]
pub struct LocalEngine {
    program: PathBuf,
}

impl Default for LocalEngine {
    fn default() -> Self {
        Self {
            program: PathBuf::from("espeak-ng"),
        }
    }
}

/// Whether `voice` is a plausible espeak-ng language code (letters, digits, `-`).
pub fn is_local_voice_id(voice: &str) -> bool {
    (2..=32).contains(&voice.len())
        && voice.starts_with(|c: char| c.is_ascii_lowercase())
        && voice
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// espeak-ng's words per minute, pitch (0-99) and amplitude (0-200) for `prosody`.
pub fn espeak_settings(prosody: Prosody) -> (u32, u32, u32) {
    let words_per_minute = (175.0 * prosody.speed).round().clamp(80.0, 450.0) as u32;
    let pitch = (50.0 + prosody.pitch_percent / 2.0)
        .round()
        .clamp(0.0, 99.0) as u32;
    let amplitude = (100.0 * (1.0 + prosody.volume_percent / 100.0))
        .round()
        .clamp(0.0, 200.0) as u32;
    (words_per_minute, pitch, amplitude)
}

impl LocalEngine {
    /// The engine at `program`.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// Speaks `text` in `voice`.
    pub async fn synthesize(
        &self,
        text: &str,
        voice: &str,
        prosody: Prosody,
    ) -> Result<Pcm, EngineError> {
        if !is_local_voice_id(voice) {
            return Err(EngineError::UnknownVoice(voice.to_owned()));
        }
        let (wpm, pitch, amplitude) = espeak_settings(prosody);
        let mut child = tokio::process::Command::new(&self.program)
            .args(["--stdin", "--stdout", "-b", "1", "-v", voice])
            .args(["-s", &wpm.to_string(), "-p", &pitch.to_string()])
            .args(["-a", &amplitude.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(EngineError::Missing)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| EngineError::Failed(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| EngineError::Failed(e.to_string()))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success()
            || stderr.contains("Unknown voice")
            || stderr.contains("Failed to read voice")
        {
            if stderr.contains("voice") {
                return Err(EngineError::UnknownVoice(voice.to_owned()));
            }
            return Err(EngineError::Failed(stderr.trim().to_owned()));
        }
        Ok(read_pcm16(&out.stdout)?)
    }

    /// The engine's voices (`espeak-ng --voices`).
    pub async fn voices(&self) -> Result<Vec<LocalVoice>, EngineError> {
        let out = tokio::process::Command::new(&self.program)
            .arg("--voices")
            .output()
            .await
            .map_err(EngineError::Missing)?;
        Ok(parse_voice_list(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// Parses `espeak-ng --voices` (`Pty Language Age/Gender VoiceName File Other Languages`).
pub fn parse_voice_list(listing: &str) -> Vec<LocalVoice> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _priority = fields.next()?;
            let id = fields.next()?.to_owned();
            let age_gender = fields.next()?;
            let name = fields.next()?.replace('_', " ");
            let gender = age_gender.rsplit('/').next().unwrap_or("-").to_owned();
            is_local_voice_id(&id).then_some(LocalVoice { id, name, gender })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_prosody_within_espeaks_ranges() {
        assert_eq!(espeak_settings(Prosody::default()), (175, 50, 100));
        let fast = Prosody {
            speed: 4.0,
            pitch_percent: 500.0,
            volume_percent: -300.0,
        };
        assert_eq!(espeak_settings(fast), (450, 99, 0));
    }

    #[test]
    fn voice_listing_parses() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)\n 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n";
        let voices = parse_voice_list(listing);
        assert_eq!(voices.len(), 2);
        assert_eq!(voices[1].id, "en-us");
        assert_eq!(voices[1].name, "English (America)");
        assert_eq!(voices[1].gender, "M");
        assert!(!is_local_voice_id("-w /tmp/x"));
    }

    /// Runs espeak-ng (installed by `vocelio-local install`, which CI runs first).
    #[tokio::test]
    async fn espeak_speaks_hostile_text_as_text() {
        let engine = LocalEngine::default();
        let pcm = engine
            .synthesize(
                "Hello <speak><break time='10s'/></speak> & -v de --help",
                "en-us",
                Prosody::default(),
            )
            .await
            .expect("espeak-ng speaks");
        assert_eq!(pcm.sample_rate, 22_050);
        let seconds = pcm.duration_seconds();
        assert!((1.0..10.0).contains(&seconds), "{seconds} s");
        assert!(
            pcm.samples.iter().any(|&s| s.unsigned_abs() > 1000),
            "silence"
        );
        assert!(matches!(
            engine.synthesize("Hi", "xx-nope", Prosody::default()).await,
            Err(EngineError::UnknownVoice(_))
        ));
        let voices = engine.voices().await.expect("voices");
        assert!(voices.iter().any(|v| v.id == "en-us"));
    }
}
