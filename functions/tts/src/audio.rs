//! Audio encodings by their provider names, rendering PCM into them (the local engine and
//! the contract fakes; MP3 by LAME), and measuring encoded audio (MP3 frame walk, WAV, μ-law).

use crate::wav::{Pcm, raw_mulaw_8k, read_pcm16, resample, write_mulaw_8k, write_pcm16};

/// A concrete encoding: codec, sample rate, container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// MPEG audio layer III, mono, at `sample_rate` and `kbps`.
    Mp3 { sample_rate: u32, kbps: u32 },
    /// 16-bit little-endian PCM, in a RIFF/WAVE container when `riff`.
    Pcm16 { sample_rate: u32, riff: bool },
    /// 8 kHz G.711 μ-law, in a RIFF/WAVE container when `riff`.
    Mulaw { riff: bool },
}

/// Why audio could not be encoded or measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("MP3 encoder: {0}")]
    Mp3(String),
    #[error("the bytes are not {0}")]
    Malformed(&'static str),
}

/// Sample rates the MP3 encoder accepts (MPEG-1, -2 and -2.5).
const MP3_RATES: [u32; 9] = [
    8000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

impl Encoding {
    /// Azure Speech's `X-Microsoft-OutputFormat` names we can produce, e.g.
    /// `audio-24khz-48kbitrate-mono-mp3`, `riff-8khz-8bit-mono-mulaw`,
    /// `raw-22050hz-16bit-mono-pcm`.
    pub fn from_azure_output_format(name: &str) -> Option<Encoding> {
        let rate = |part: &str| -> Option<u32> {
            if let Some(khz) = part.strip_suffix("khz") {
                khz.parse::<u32>().ok().map(|k| k * 1000)
            } else {
                part.strip_suffix("hz")?.parse().ok()
            }
        };
        let parts: Vec<&str> = name.split('-').collect();
        match parts.as_slice() {
            ["audio", r, b, "mono", "mp3"] => Some(Encoding::Mp3 {
                sample_rate: rate(r)?,
                kbps: b.strip_suffix("kbitrate")?.parse().ok()?,
            }),
            [container @ ("riff" | "raw"), r, "16bit", "mono", "pcm"] => Some(Encoding::Pcm16 {
                sample_rate: rate(r)?,
                riff: *container == "riff",
            }),
            [
                container @ ("riff" | "raw"),
                "8khz",
                "8bit",
                "mono",
                "mulaw",
            ] => Some(Encoding::Mulaw {
                riff: *container == "riff",
            }),
            _ => None,
        }
        .filter(Encoding::is_producible)
    }

    /// ElevenLabs' `output_format` names we can produce: `mp3_<rate>_<kbps>`, `pcm_<rate>`,
    /// `ulaw_8000`.
    pub fn from_elevenlabs_output_format(name: &str) -> Option<Encoding> {
        let parts: Vec<&str> = name.split('_').collect();
        match parts.as_slice() {
            ["mp3", r, b] => Some(Encoding::Mp3 {
                sample_rate: r.parse().ok()?,
                kbps: b.parse().ok()?,
            }),
            ["pcm", r] => Some(Encoding::Pcm16 {
                sample_rate: r.parse().ok()?,
                riff: false,
            }),
            ["ulaw", "8000"] => Some(Encoding::Mulaw { riff: false }),
            _ => None,
        }
        .filter(Encoding::is_producible)
    }

    fn is_producible(&self) -> bool {
        match *self {
            Encoding::Mp3 { sample_rate, kbps } => {
                MP3_RATES.contains(&sample_rate) && (8..=320).contains(&kbps)
            }
            Encoding::Pcm16 { sample_rate, .. } => (8000..=48_000).contains(&sample_rate),
            Encoding::Mulaw { .. } => true,
        }
    }

    /// The sample rate of the encoded audio.
    pub fn sample_rate(self) -> u32 {
        match self {
            Encoding::Mp3 { sample_rate, .. } | Encoding::Pcm16 { sample_rate, .. } => sample_rate,
            Encoding::Mulaw { .. } => 8000,
        }
    }
}

/// `pcm` rendered in `encoding` (resampled as needed).
pub fn render(pcm: &Pcm, encoding: Encoding) -> Result<Vec<u8>, AudioError> {
    match encoding {
        Encoding::Mp3 { sample_rate, kbps } => {
            let mut encoder = Mp3Stream::new(sample_rate, kbps)?;
            let mut out = encoder.push(pcm)?;
            out.extend(encoder.finish()?);
            Ok(out)
        }
        Encoding::Pcm16 { sample_rate, riff } => {
            let pcm = resample(pcm, sample_rate);
            if riff {
                Ok(write_pcm16(&pcm))
            } else {
                Ok(pcm.samples.iter().flat_map(|s| s.to_le_bytes()).collect())
            }
        }
        Encoding::Mulaw { riff: true } => Ok(write_mulaw_8k(pcm)),
        Encoding::Mulaw { riff: false } => Ok(raw_mulaw_8k(pcm)),
    }
}

/// An MP3 encoder (LAME, constant bit rate, mono) fed PCM piece by piece (streaming
/// synthesis): each `push` returns the frames completed so far.
pub struct Mp3Stream {
    encoder: mp3lame_encoder::Encoder,
    sample_rate: u32,
}

impl std::fmt::Debug for Mp3Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp3Stream")
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

fn lame_bitrate(kbps: u32) -> Option<mp3lame_encoder::Bitrate> {
    use mp3lame_encoder::Bitrate::*;
    Some(match kbps {
        8 => Kbps8,
        16 => Kbps16,
        24 => Kbps24,
        32 => Kbps32,
        40 => Kbps40,
        48 => Kbps48,
        64 => Kbps64,
        80 => Kbps80,
        96 => Kbps96,
        112 => Kbps112,
        128 => Kbps128,
        160 => Kbps160,
        192 => Kbps192,
        224 => Kbps224,
        256 => Kbps256,
        320 => Kbps320,
        _ => return None,
    })
}

fn lame_error(what: &str, error: impl std::fmt::Display) -> AudioError {
    AudioError::Mp3(format!("{what}: {error}"))
}

impl Mp3Stream {
    /// A mono encoder at `sample_rate` (one of the MPEG rates) and `kbps`.
    pub fn new(sample_rate: u32, kbps: u32) -> Result<Self, AudioError> {
        let bitrate =
            lame_bitrate(kbps).ok_or_else(|| AudioError::Mp3(format!("no {kbps} kbit/s rate")))?;
        let mut builder = mp3lame_encoder::Builder::new()
            .ok_or_else(|| AudioError::Mp3("LAME could not start".into()))?;
        builder
            .set_num_channels(1)
            .map_err(|e| lame_error("channels", e))?;
        builder
            .set_sample_rate(sample_rate)
            .map_err(|e| lame_error("sample rate", e))?;
        builder
            .set_brate(bitrate)
            .map_err(|e| lame_error("bit rate", e))?;
        builder
            .set_to_write_vbr_tag(false)
            .map_err(|e| lame_error("tag", e))?;
        let encoder = builder.build().map_err(|e| lame_error("build", e))?;
        Ok(Self {
            encoder,
            sample_rate,
        })
    }

    /// Encodes `pcm` (resampled to the encoder's rate); returns the finished frames.
    pub fn push(&mut self, pcm: &Pcm) -> Result<Vec<u8>, AudioError> {
        let pcm = resample(pcm, self.sample_rate);
        let mut out =
            Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(pcm.samples.len()));
        self.encoder
            .encode_to_vec(mp3lame_encoder::MonoPcm(pcm.samples.as_slice()), &mut out)
            .map_err(|e| lame_error("encode", e))?;
        Ok(out)
    }

    /// Flushes the encoder: the last frames.
    pub fn finish(mut self) -> Result<Vec<u8>, AudioError> {
        let mut out = Vec::with_capacity(7200);
        self.encoder
            .flush_to_vec::<mp3lame_encoder::FlushNoGap>(&mut out)
            .map_err(|e| lame_error("flush", e))?;
        Ok(out)
    }
}

/// What a walk over an MP3 stream's frames found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mp3Info {
    pub sample_rate: u32,
    pub frames: usize,
    pub duration_seconds: f64,
}

/// One MPEG audio frame header: (frame length in bytes, samples, sample rate).
fn mp3_frame(header: [u8; 4]) -> Option<(usize, u32, u32)> {
    if header[0] != 0xFF || header[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (header[1] >> 3) & 0b11; // 0: 2.5, 2: 2, 3: 1
    let layer = (header[1] >> 1) & 0b11; // 1: layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let bitrate_index = usize::from(header[2] >> 4);
    let rate_index = usize::from((header[2] >> 2) & 0b11);
    let padding = usize::from((header[2] >> 1) & 1);
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const V1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (kbps, base_rate, samples) = match version {
        3 => (
            V1[bitrate_index],
            [44_100, 48_000, 32_000][rate_index],
            1152,
        ),
        2 => (V2[bitrate_index], [22_050, 24_000, 16_000][rate_index], 576),
        _ => (V2[bitrate_index], [11_025, 12_000, 8000][rate_index], 576),
    };
    let length = (samples / 8 * kbps * 1000 / base_rate) as usize + padding;
    Some((length, samples, base_rate))
}

/// Walks the MP3 frames of `bytes` (after an optional ID3v2 tag). `None` unless the bytes
/// are a chain of valid layer III frames from start to end (a truncated last frame, a
/// trailing ID3v1/APE tag and zero padding are tolerated).
pub fn mp3_info(bytes: &[u8]) -> Option<Mp3Info> {
    let mut at = 0;
    if bytes.get(0..3) == Some(b"ID3") && bytes.len() >= 10 {
        let size = bytes[6..10]
            .iter()
            .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
        at = 10 + size;
    }
    let (mut frames, mut samples, mut rate) = (0usize, 0u64, 0u32);
    while at + 4 <= bytes.len() {
        let header = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let Some((length, frame_samples, frame_rate)) = mp3_frame(header) else {
            // After the frames, only a trailing tag (ID3v1, APE, ID3) or zero padding.
            let tail = &bytes[at..];
            let trailer = tail.starts_with(b"TAG")
                || tail.starts_with(b"APETAGEX")
                || tail.starts_with(b"ID3")
                || tail.iter().all(|&b| b == 0);
            if frames > 0 && trailer {
                break;
            }
            return None;
        };
        if rate != 0 && frame_rate != rate {
            return None;
        }
        rate = frame_rate;
        frames += 1;
        samples += u64::from(frame_samples);
        at += length.max(1);
    }
    if frames == 0 {
        return None;
    }
    Some(Mp3Info {
        sample_rate: rate,
        frames,
        duration_seconds: samples as f64 / f64::from(rate),
    })
}

/// Seconds of audio in `bytes` encoded as `encoding`.
pub fn duration_seconds(bytes: &[u8], encoding: Encoding) -> Result<f64, AudioError> {
    match encoding {
        Encoding::Mp3 { .. } => mp3_info(bytes)
            .map(|info| info.duration_seconds)
            .ok_or(AudioError::Malformed("MP3")),
        Encoding::Pcm16 { riff: true, .. } => read_pcm16(bytes)
            .map(|pcm| pcm.duration_seconds())
            .map_err(|_| AudioError::Malformed("16-bit PCM WAV")),
        Encoding::Pcm16 {
            riff: false,
            sample_rate,
        } => Ok(bytes.len() as f64 / 2.0 / f64::from(sample_rate)),
        Encoding::Mulaw { riff: true } => wav_data_len(bytes)
            .map(|n| n as f64 / 8000.0)
            .ok_or(AudioError::Malformed("μ-law WAV")),
        Encoding::Mulaw { riff: false } => Ok(bytes.len() as f64 / 8000.0),
    }
}

/// The length of a WAV file's data chunk (bounded by the bytes present).
pub fn wav_data_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return None;
    }
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        if &bytes[at..at + 4] == b"data" {
            return Some(size.min(bytes.len() - at - 8));
        }
        at += 8 + size + (size & 1);
    }
    None
}

/// A WAV header for a stream whose length is not known yet (sizes set to the maximum, as
/// streaming servers and espeak-ng do): 16-bit PCM (`tag` 1) or μ-law (`tag` 7).
pub fn streaming_wav_header(tag: u16, sample_rate: u32, bits: u16) -> Vec<u8> {
    let block = bits / 8;
    let mut out = Vec::with_capacity(44);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::MAX.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * u32::from(block)).to_le_bytes());
    out.extend_from_slice(&block.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(u32::MAX - 36).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::wav::tests::tone;

    #[test]
    fn provider_format_names_parse_as_their_contracts_spell_them() {
        assert_eq!(
            Encoding::from_azure_output_format("audio-24khz-48kbitrate-mono-mp3"),
            Some(Encoding::Mp3 {
                sample_rate: 24_000,
                kbps: 48
            })
        );
        assert_eq!(
            Encoding::from_azure_output_format("raw-22050hz-16bit-mono-pcm"),
            Some(Encoding::Pcm16 {
                sample_rate: 22_050,
                riff: false
            })
        );
        assert_eq!(
            Encoding::from_azure_output_format("riff-8khz-8bit-mono-mulaw"),
            Some(Encoding::Mulaw { riff: true })
        );
        assert_eq!(
            Encoding::from_azure_output_format("ogg-24khz-16bit-mono-opus"),
            None
        );
        assert_eq!(
            Encoding::from_elevenlabs_output_format("mp3_44100_128"),
            Some(Encoding::Mp3 {
                sample_rate: 44_100,
                kbps: 128
            })
        );
        assert_eq!(
            Encoding::from_elevenlabs_output_format("ulaw_8000"),
            Some(Encoding::Mulaw { riff: false })
        );
        assert_eq!(Encoding::from_elevenlabs_output_format("mp3_1_1"), None);
    }

    #[test]
    fn mp3_encodes_to_a_valid_frame_chain_of_the_right_length() {
        for (rate, kbps) in [(24_000, 48), (44_100, 128), (22_050, 32)] {
            let mp3 = render(
                &tone(22_050, 2.0),
                Encoding::Mp3 {
                    sample_rate: rate,
                    kbps,
                },
            )
            .expect("encodes");
            let info = mp3_info(&mp3).expect("a frame chain");
            assert_eq!(info.sample_rate, rate);
            assert!(
                (info.duration_seconds - 2.0).abs() < 0.15,
                "{rate}: {} s",
                info.duration_seconds
            );
        }
        let mut tagged = render(
            &tone(22_050, 0.5),
            Encoding::Mp3 {
                sample_rate: 24_000,
                kbps: 48,
            },
        )
        .expect("encodes");
        let frames = mp3_info(&tagged).expect("frames").frames;
        tagged.extend_from_slice(b"TAG");
        tagged.extend_from_slice(&[0u8; 125]);
        assert_eq!(mp3_info(&tagged).map(|i| i.frames), Some(frames));
        assert_eq!(mp3_info(b"RIFF....WAVEfmt "), None);
        assert_eq!(mp3_info(&[]), None);
    }

    #[test]
    fn streamed_mp3_equals_a_chain_of_frames_too() {
        let mut stream = Mp3Stream::new(24_000, 48).expect("encoder");
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(stream.push(&tone(22_050, 0.3)).expect("push"));
        }
        out.extend(stream.finish().expect("finish"));
        let info = mp3_info(&out).expect("frames");
        assert!((info.duration_seconds - 1.5).abs() < 0.1);
    }

    #[test]
    fn durations_are_measured_per_encoding() {
        let pcm = tone(16_000, 1.0);
        for encoding in [
            Encoding::Pcm16 {
                sample_rate: 16_000,
                riff: true,
            },
            Encoding::Pcm16 {
                sample_rate: 24_000,
                riff: false,
            },
            Encoding::Mulaw { riff: true },
            Encoding::Mulaw { riff: false },
        ] {
            let bytes = render(&pcm, encoding).expect("renders");
            let seconds = duration_seconds(&bytes, encoding).expect("measures");
            assert!((seconds - 1.0).abs() < 0.01, "{encoding:?}: {seconds}");
        }
        let header = streaming_wav_header(7, 8000, 8);
        assert_eq!(header.len(), 44);
        assert_eq!(wav_data_len(&header), Some(0));
    }
}
