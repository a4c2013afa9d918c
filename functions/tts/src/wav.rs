//! WAV containers and G.711 μ-law, for the local engine's output (espeak-ng writes 16-bit
//! PCM WAV) and for telephony (Twilio plays 8 kHz μ-law).

/// Decoded PCM: mono 16-bit samples at a sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl Pcm {
    /// Length in seconds.
    pub fn duration_seconds(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Why a WAV file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("unsupported WAV encoding: format {format}, {channels} channel(s), {bits} bits")]
    Unsupported {
        format: u16,
        channels: u16,
        bits: u16,
    },
    #[error("the WAV file has no data chunk")]
    NoData,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *bytes.get(at)?,
        *bytes.get(at + 1)?,
        *bytes.get(at + 2)?,
        *bytes.get(at + 3)?,
    ]))
}

/// Reads a mono 16-bit PCM WAV (what espeak-ng writes). A data chunk whose declared size is
/// larger than the file (espeak-ng writing to a pipe) is read to the end.
pub fn read_pcm16(bytes: &[u8]) -> Result<Pcm, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWave);
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4).ok_or(WavError::NotWave)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            let tag = u16_at(bytes, body).ok_or(WavError::NotWave)?;
            let channels = u16_at(bytes, body + 2).ok_or(WavError::NotWave)?;
            let rate = u32_at(bytes, body + 4).ok_or(WavError::NotWave)?;
            let bits = u16_at(bytes, body + 14).ok_or(WavError::NotWave)?;
            format = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or(WavError::NotWave)?;
            if tag != 1 || channels != 1 || bits != 16 {
                return Err(WavError::Unsupported {
                    format: tag,
                    channels,
                    bits,
                });
            }
            let end = body.saturating_add(size).min(bytes.len());
            let samples = bytes[body..end]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Ok(Pcm {
                sample_rate: rate,
                samples,
            });
        }
        at = body.saturating_add(size + (size & 1));
    }
    Err(WavError::NoData)
}

fn header(format_tag: u16, sample_rate: u32, bits: u16, data_len: usize) -> Vec<u8> {
    let block_align = bits / 8;
    let data_len = u32::try_from(data_len)
        .unwrap_or(u32::MAX)
        .min(u32::MAX - 64);
    // Non-PCM formats (μ-law) carry a cbSize field and a fact chunk, as the spec asks.
    let extended = format_tag != 1;
    let fmt_len: u32 = if extended { 18 } else { 16 };
    let fact_len: u32 = if extended { 12 } else { 0 };
    let mut out = Vec::with_capacity(64 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(4 + 8 + fmt_len + fact_len + 8 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&fmt_len.to_le_bytes());
    out.extend_from_slice(&format_tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    if extended {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&data_len.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out
}

/// A 16-bit PCM WAV file of `pcm`.
pub fn write_pcm16(pcm: &Pcm) -> Vec<u8> {
    let mut out = header(1, pcm.sample_rate, 16, pcm.samples.len() * 2);
    for s in &pcm.samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// G.711 μ-law encoding of one sample.
pub fn mulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 μ-law decoding of one byte.
pub fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// `pcm` resampled to `rate` by linear interpolation (speech to 8 kHz for telephony;
/// a low-pass pre-filter averages the samples each output sample spans when decimating).
pub fn resample(pcm: &Pcm, rate: u32) -> Pcm {
    if pcm.sample_rate == rate || pcm.samples.is_empty() || rate == 0 {
        return Pcm {
            sample_rate: rate,
            samples: pcm.samples.clone(),
        };
    }
    let ratio = f64::from(pcm.sample_rate) / f64::from(rate);
    let out_len = (pcm.samples.len() as f64 / ratio).floor() as usize;
    let window = ratio.max(1.0) as usize;
    let smoothed: Vec<f64> = if window > 1 {
        pcm.samples
            .windows(window)
            .map(|w| w.iter().map(|&s| f64::from(s)).sum::<f64>() / window as f64)
            .collect()
    } else {
        pcm.samples.iter().map(|&s| f64::from(s)).collect()
    };
    let samples = (0..out_len)
        .map(|i| {
            let position = i as f64 * ratio;
            let index = position.floor() as usize;
            let fraction = position - index as f64;
            let a = smoothed.get(index).copied().unwrap_or(0.0);
            let b = smoothed.get(index + 1).copied().unwrap_or(a);
            (a + (b - a) * fraction).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Pcm {
        sample_rate: rate,
        samples,
    }
}

/// The header of an 8 kHz μ-law WAV file holding `samples` bytes of audio.
pub fn mulaw_header(samples: usize) -> Vec<u8> {
    header(7, 8000, 8, samples)
}

/// An 8 kHz μ-law WAV file (format tag 7) of `pcm`, for telephony.
pub fn write_mulaw_8k(pcm: &Pcm) -> Vec<u8> {
    let narrow = resample(pcm, 8000);
    let mut out = header(7, 8000, 8, narrow.samples.len());
    out.extend(narrow.samples.iter().map(|&s| mulaw_encode(s)));
    out
}

/// Headerless 8 kHz μ-law bytes of `pcm` (Azure's `raw-8khz-8bit-mono-mulaw`, ElevenLabs'
/// `ulaw_8000`, Twilio media streams).
pub fn raw_mulaw_8k(pcm: &Pcm) -> Vec<u8> {
    resample(pcm, 8000)
        .samples
        .iter()
        .map(|&s| mulaw_encode(s))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 440 Hz sine of `seconds` at `rate` (shared by the audio tests).
    pub(crate) fn tone(rate: u32, seconds: f64) -> Pcm {
        let n = (f64::from(rate) * seconds) as usize;
        Pcm {
            sample_rate: rate,
            samples: (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(rate);
                    (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                })
                .collect(),
        }
    }

    #[test]
    fn pcm_wav_round_trips() {
        let pcm = tone(22_050, 0.5);
        let wav = write_pcm16(&pcm);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(read_pcm16(&wav).unwrap(), pcm);
        assert!((pcm.duration_seconds() - 0.5).abs() < 0.001);
        assert_eq!(read_pcm16(b"not a wav file at all"), Err(WavError::NotWave));
    }

    #[test]
    fn mulaw_is_g711() {
        // Reference points of G.711 μ-law.
        assert_eq!(mulaw_encode(0), 0xff);
        assert_eq!(mulaw_encode(-1), 0x7f);
        assert_eq!(mulaw_encode(32_767), 0x80);
        assert_eq!(mulaw_encode(-32_768), 0x00);
        for s in [-30_000i16, -1000, -10, 0, 10, 1000, 30_000] {
            let back = mulaw_decode(mulaw_encode(s));
            let error = (i32::from(back) - i32::from(s)).abs();
            assert!(error <= (i32::from(s).abs() / 16).max(8), "{s} -> {back}");
        }
    }

    #[test]
    fn telephony_wav_is_8khz_mulaw_of_the_same_length() {
        let pcm = tone(22_050, 1.0);
        let wav = write_mulaw_8k(&pcm);
        assert_eq!(u16_at(&wav, 20), Some(7));
        assert_eq!(u32_at(&wav, 24), Some(8000));
        let data = wav.len() - 58;
        assert!((7990..=8000).contains(&data), "{data} samples");
        assert_eq!(raw_mulaw_8k(&pcm).len(), data);
    }
}
