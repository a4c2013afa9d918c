//! How long a `<Play>` lasts: a WAV's data size over its byte rate, a constant-bitrate MP3's
//! size over its bitrate, raw μ-law (`audio/basic`, `audio/x-mulaw`) at 8,000 bytes a
//! second; anything else counts as one second.

/// Seconds of audio in `body`.
pub(crate) fn audio_seconds(content_type: Option<&str>, body: &[u8]) -> f64 {
    if let Some(seconds) = wav_seconds(body).or_else(|| mp3_seconds(body)) {
        return seconds;
    }
    let mulaw = content_type.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("audio/basic")
            || t.starts_with("audio/x-mulaw")
            || t.starts_with("audio/ulaw")
    });
    if mulaw && !body.is_empty() {
        return body.len() as f64 / 8000.0;
    }
    1.0
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

/// RIFF/WAVE: walks the chunks for `fmt ` (byte rate) and `data` (size, capped at what
/// was received, so streaming headers with 0xFFFFFFFF sizes work).
pub(crate) fn wav_seconds(body: &[u8]) -> Option<f64> {
    if body.get(0..4)? != b"RIFF" || body.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut byte_rate = None;
    while at + 8 <= body.len() {
        let id = &body[at..at + 4];
        let size = u32_le(body, at + 4)? as usize;
        let data = at + 8;
        if id == b"fmt " {
            byte_rate = u32_le(body, data + 8).filter(|r| *r > 0);
        } else if id == b"data" {
            let available = body.len().saturating_sub(data);
            let bytes = size.min(available);
            return byte_rate.map(|rate| bytes as f64 / f64::from(rate));
        }
        // Chunks are padded to an even size.
        at = data.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// MPEG audio layer III with the first frame's bitrate (constant bitrate assumed); an ID3v2
/// tag in front is skipped.
pub(crate) fn mp3_seconds(body: &[u8]) -> Option<f64> {
    let mut at = 0;
    if body.get(0..3)? == b"ID3" {
        let header = body.get(0..10)?;
        let size = header[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
        let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
        at = 10 + size + footer;
    }
    let frame = body.get(at..at + 4)?;
    if frame[0] != 0xff || frame[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (frame[1] >> 3) & 0b11; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (frame[1] >> 1) & 0b11; // 1 = layer III
    if layer != 1 || version == 1 {
        return None;
    }
    const MPEG1: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const MPEG2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let index = usize::from(frame[2] >> 4);
    let kbps = if version == 3 {
        MPEG1.get(index)
    } else {
        MPEG2.get(index)
    }
    .copied()
    .filter(|k| *k > 0)?;
    Some((body.len() - at) as f64 * 8.0 / (f64::from(kbps) * 1000.0))
}

#[cfg(test)]
pub(crate) fn wav(seconds: f64, rate: u32) -> Vec<u8> {
    let samples = (seconds * f64::from(rate)) as u32;
    let data = samples * 2;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.resize(out.len() + data as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_come_from_the_audio() {
        let two = wav(2.0, 8000);
        assert!((audio_seconds(Some("audio/wav"), &two) - 2.0).abs() < 1e-9);
        // A 128 kbps MPEG-1 layer III frame header, then 32,000 bytes: 2 s.
        let mut mp3 = vec![0xff, 0xfb, 0x90, 0x64];
        mp3.resize(32_000, 0);
        assert!((audio_seconds(Some("audio/mpeg"), &mp3) - 2.0).abs() < 1e-9);
        assert!((audio_seconds(Some("audio/basic"), &[0u8; 4000]) - 0.5).abs() < 1e-9);
        assert!((audio_seconds(Some("text/plain"), b"hello") - 1.0).abs() < 1e-9);
    }
}
