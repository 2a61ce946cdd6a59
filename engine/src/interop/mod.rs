//! Interop with other amp-modelling formats: NAM's `.nam` files (WaveNet, LSTM; import and
//! export) and AIDA-X / Proteus JSON models (LSTM, GRU; import), plus NAM-style loudness and
//! the default gain staging derived from calibration metadata. Runs off the audio thread
//! (CLI, GUI file loading).
//!
//! Importers translate a file into a validated [`Profile`] that plays exactly what the
//! original tool plays; anything Doppel cannot play exactly is rejected with a one-line
//! error naming the unsupported feature.

pub mod aidax;
pub mod loudness;
pub mod nam;
mod nam_wavenet;
mod weights;

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::profile::Profile;

pub use loudness::{
    calibration_gains_db, measure_gain, measure_loudness_db, OUTPUT_LOUDNESS_TARGET_DB, REFERENCE_INTERFACE_LEVEL_DBU,
};

/// Sample rate assumed for files that do not state one, in Hz (NAM's and AIDA-X's default).
pub const DEFAULT_SAMPLE_RATE: u32 = 48_000;

/// Choices an import can take from the user where the file is silent.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Display name; overrides the file's own name.
    pub name: Option<String>,
    /// Sample rate in Hz, used when the file does not state one (else
    /// [`DEFAULT_SAMPLE_RATE`]). A file that states a different rate is an error.
    pub sample_rate: Option<u32>,
    /// Name used when neither `name` nor the file gives one (e.g. the file's stem).
    pub fallback_name: Option<String>,
}

impl ImportOptions {
    /// `name`, else the file's own name, else `fallback_name`, else `default`.
    fn resolve_name(&self, from_file: Option<&str>, default: &str) -> String {
        self.name
            .as_deref()
            .or(from_file.filter(|n| !n.trim().is_empty()))
            .or(self.fallback_name.as_deref())
            .unwrap_or(default)
            .to_string()
    }

    /// The sample rate to use given what the file says (`None`: nothing).
    fn resolve_sample_rate(&self, from_file: Option<f64>) -> Result<u32> {
        let Some(rate) = from_file else {
            return Ok(self.sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE));
        };
        if !(rate.is_finite() && rate.fract() == 0.0 && (1.0..=1e6).contains(&rate)) {
            bail!("file states an invalid sample rate {rate}");
        }
        let rate = rate as u32;
        if let Some(given) = self.sample_rate {
            if given != rate {
                bail!("--sample-rate {given} contradicts the file's sample rate {rate} Hz");
            }
        }
        Ok(rate)
    }
}

/// Imports a NAM (`.nam`) or AIDA-X / Proteus (`.json`, `.aidax`) model file, choosing the
/// reader by content (a NAM file has `"architecture"` and `"weights"` at the top level).
pub fn import_file(path: &Path, options: &ImportOptions) -> Result<Profile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let mut options = options.clone();
    if options.fallback_name.is_none() {
        options.fallback_name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    let profile = if json.get("architecture").is_some() && json.get("weights").is_some() {
        nam::import(&json, &options)
    } else if json.get("layers").is_some() || json.get("model_data").is_some() {
        aidax::import(&json, &options)
    } else {
        bail!("not a NAM (.nam) or AIDA-X / Proteus (.json) model file")
    };
    profile.with_context(|| format!("cannot import {}", path.display()))
}

/// Writes `profile` as a NAM file at `path`; see [`nam::export`] for what can be exported.
pub fn export_nam_file(profile: &Profile, path: &Path) -> Result<()> {
    let json = nam::export(profile)?;
    std::fs::write(path, serde_json::to_string(&json)?).with_context(|| format!("cannot write {}", path.display()))
}
