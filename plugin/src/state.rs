//! The persisted form of the loaded profile: file bytes, zlib-compressed, base64 text.
//! Used off the audio thread only (host state save/restore, GUI loads).
//!
//! Format of the `profile` field in the plugin state: the empty string when no profile is
//! loaded, else [`STATE_TAG`] followed by standard base64 (with padding) of the zlib stream of
//! the `.doppel` file bytes exactly as loaded (or as written by `Profile::to_bytes`).

use std::io::{Read, Write};

use anyhow::{ensure, Context, Result};
use base64::Engine;
use flate2::{read::ZlibDecoder, write::ZlibEncoder, Compression};

/// Prefix of an encoded profile; names the encoding so it can change later.
pub const STATE_TAG: &str = "dpz1:";

/// Largest decoded profile accepted from a state blob, in bytes (guards against a corrupt or
/// hostile blob inflating without bound; the largest preset is well under 1 MB).
pub const MAX_PROFILE_BYTES: usize = 64 << 20;

/// Encodes `.doppel` file bytes for the plugin state (`""` for no bytes).
pub fn encode_profile(file_bytes: &[u8]) -> String {
    if file_bytes.is_empty() {
        return String::new();
    }
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(file_bytes.len() / 2), Compression::best());
    encoder.write_all(file_bytes).expect("writing to a Vec cannot fail");
    let compressed = encoder.finish().expect("finishing into a Vec cannot fail");
    let mut text = String::with_capacity(STATE_TAG.len() + compressed.len().div_ceil(3) * 4);
    text.push_str(STATE_TAG);
    base64::engine::general_purpose::STANDARD.encode_string(&compressed, &mut text);
    text
}

/// Decodes a state string back to `.doppel` file bytes (empty for `""`). The bytes are not yet
/// validated as a profile: `Profile::from_bytes` does that.
pub fn decode_profile(text: &str) -> Result<Vec<u8>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let payload = text
        .strip_prefix(STATE_TAG)
        .with_context(|| format!("saved profile has an unknown encoding (expected the '{STATE_TAG}' prefix)"))?;
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .context("saved profile is not valid base64")?;
    let mut bytes = Vec::new();
    ZlibDecoder::new(compressed.as_slice())
        .take(MAX_PROFILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .context("saved profile is not a valid zlib stream")?;
    ensure!(
        bytes.len() <= MAX_PROFILE_BYTES,
        "saved profile is larger than {MAX_PROFILE_BYTES} bytes"
    );
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_engine::{Profile, Size};

    fn profile(architecture: &str, size: Size) -> Profile {
        Profile::fixture(architecture, size, "fixture", 7).unwrap()
    }

    #[test]
    fn round_trip_gives_the_same_bytes_and_profile() {
        for architecture in ["wavenet", "lstm"] {
            let original = profile(architecture, Size::Nano);
            let bytes = original.to_bytes().unwrap();
            let text = encode_profile(&bytes);
            assert!(text.starts_with(STATE_TAG));
            // The state is JSON: the text must need no escaping.
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=:".contains(&b)));
            let decoded = decode_profile(&text).unwrap();
            assert_eq!(decoded, bytes, "{architecture}: bytes differ after the round trip");
            assert_eq!(Profile::from_bytes(&decoded).unwrap(), original);
        }
    }

    #[test]
    fn standard_model_state_stays_small() {
        // Random weights do not compress, so this bounds real profiles too: base64 of the
        // raw file plus zlib framing, at most 4/3 of the file plus 1 KiB.
        for architecture in ["wavenet", "lstm"] {
            let bytes = profile(architecture, Size::Standard).to_bytes().unwrap();
            let text = encode_profile(&bytes);
            assert!(
                text.len() <= bytes.len() * 4 / 3 + 1024,
                "{architecture}: {} chars for {} bytes",
                text.len(),
                bytes.len()
            );
            assert!(
                text.len() < 2 << 20,
                "{architecture}: state of {} chars exceeds 2 MiB",
                text.len()
            );
        }
    }

    #[test]
    fn empty_means_no_profile() {
        assert_eq!(encode_profile(&[]), "");
        assert!(decode_profile("").unwrap().is_empty());
        assert!(decode_profile("  ").unwrap().is_empty());
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let good = encode_profile(b"not really a profile, but bytes");
        assert_eq!(decode_profile(&good).unwrap(), b"not really a profile, but bytes");
        assert!(decode_profile("raw:abcd").is_err(), "unknown tag accepted");
        assert!(decode_profile("dpz1:***").is_err(), "bad base64 accepted");
        assert!(decode_profile("dpz1:AAAA").is_err(), "bad zlib accepted");
        let truncated = &good[..good.len() - 8];
        assert!(decode_profile(truncated).is_err(), "truncated stream accepted");
    }
}
