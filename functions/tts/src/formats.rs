//! The audio formats we serve, and what each provider calls them.

use serde::{Deserialize, Serialize};

use crate::audio::Encoding;

/// An output format of `/synthesize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    /// MP3 for browsers (24 kHz mono, 48 kbit/s).
    Mp3,
    /// 16-bit PCM WAV at 24 kHz.
    Wav,
    /// 8 kHz μ-law WAV for telephony (Twilio `<Play>`).
    MulawWav,
    /// Headerless 8 kHz μ-law (Twilio media streams).
    Mulaw,
}

impl AudioFormat {
    /// Every format.
    pub const ALL: [AudioFormat; 4] = [
        AudioFormat::Mp3,
        AudioFormat::Wav,
        AudioFormat::MulawWav,
        AudioFormat::Mulaw,
    ];

    /// The name clients use in `format`.
    pub fn as_str(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Wav => "wav",
            AudioFormat::MulawWav => "mulaw_wav",
            AudioFormat::Mulaw => "mulaw",
        }
    }

    /// Parses a client's `format` (also `ulaw_8000`, `audio/mpeg`, ...).
    pub fn parse(name: &str) -> Option<AudioFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "mp3" | "mpeg" | "audio/mpeg" => Some(AudioFormat::Mp3),
            "wav" | "pcm" | "audio/wav" => Some(AudioFormat::Wav),
            "mulaw_wav" | "ulaw_wav" | "telephony" => Some(AudioFormat::MulawWav),
            "mulaw" | "ulaw" | "ulaw_8000" | "audio/basic" => Some(AudioFormat::Mulaw),
            _ => None,
        }
    }

    /// The `Content-Type` of the bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Wav | AudioFormat::MulawWav => "audio/wav",
            AudioFormat::Mulaw => "audio/basic",
        }
    }

    /// The file extension of a stored object.
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Wav | AudioFormat::MulawWav => "wav",
            AudioFormat::Mulaw => "ulaw",
        }
    }

    /// The encoding we deliver (what the local engine renders, what providers' bytes become).
    pub fn encoding(self) -> Encoding {
        match self {
            AudioFormat::Mp3 => Encoding::Mp3 {
                sample_rate: 24_000,
                kbps: 48,
            },
            AudioFormat::Wav => Encoding::Pcm16 {
                sample_rate: 24_000,
                riff: true,
            },
            AudioFormat::MulawWav => Encoding::Mulaw { riff: true },
            AudioFormat::Mulaw => Encoding::Mulaw { riff: false },
        }
    }

    /// The header a streamed clip of this format starts with when the provider sends
    /// headerless samples (WAV formats; sizes unknown until the end).
    pub fn streaming_wav_header(self) -> Option<Vec<u8>> {
        match self.encoding() {
            Encoding::Pcm16 {
                sample_rate,
                riff: true,
            } => Some(crate::audio::streaming_wav_header(1, sample_rate, 16)),
            Encoding::Mulaw { riff: true } => Some(crate::audio::streaming_wav_header(7, 8000, 8)),
            _ => None,
        }
    }

    /// Azure Speech's `X-Microsoft-OutputFormat` when streaming: FACTS lists the `riff-*`
    /// formats as non-streaming, so WAV formats stream as `raw-*` behind our own header.
    pub fn azure_stream_output_format(self) -> &'static str {
        match self {
            AudioFormat::Wav => "raw-24khz-16bit-mono-pcm",
            AudioFormat::MulawWav => "raw-8khz-8bit-mono-mulaw",
            other => other.azure_output_format(),
        }
    }

    /// Azure Speech's `X-Microsoft-OutputFormat` for this format.
    pub fn azure_output_format(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "audio-24khz-48kbitrate-mono-mp3",
            AudioFormat::Wav => "riff-24khz-16bit-mono-pcm",
            AudioFormat::MulawWav => "riff-8khz-8bit-mono-mulaw",
            AudioFormat::Mulaw => "raw-8khz-8bit-mono-mulaw",
        }
    }

    /// ElevenLabs' `output_format` for this format (WAV containers are added by us around
    /// the headerless PCM / μ-law it returns).
    pub fn elevenlabs_output_format(self) -> &'static str {
        match self {
            AudioFormat::Mp3 => "mp3_44100_64",
            AudioFormat::Wav => "pcm_24000",
            AudioFormat::MulawWav | AudioFormat::Mulaw => "ulaw_8000",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_provider_names_are_from_their_contracts() {
        for format in AudioFormat::ALL {
            assert_eq!(AudioFormat::parse(format.as_str()), Some(format));
        }
        assert_eq!(AudioFormat::parse("ULAW_8000"), Some(AudioFormat::Mulaw));
        assert_eq!(AudioFormat::parse("flac"), None);
        // FACTS.md: Azure's documented formats; ElevenLabs' output_format enum.
        assert_eq!(
            AudioFormat::MulawWav.azure_output_format(),
            "riff-8khz-8bit-mono-mulaw"
        );
        assert_eq!(AudioFormat::Mulaw.elevenlabs_output_format(), "ulaw_8000");
    }
}
