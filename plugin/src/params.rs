//! Host parameters (`DoppelParams`) and the knob labels a loaded profile gives them.
//! Values are read on the audio thread; formatting closures run on host/GUI threads.
//!
//! The four conditioning knobs are 0..1 parameters whose value *is* the model's normalised knob
//! input. What a knob means (name, range, unit) comes from the loaded profile through a
//! lock-free [`KnobLabels`] cell the formatting closures read.

use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use doppel_engine::model::MAX_KNOBS;
use doppel_engine::plan::PlanKnob;
use doppel_engine::train::EffectKind;
use doppel_engine::{KnobDescriptor, ProfileMeta};
use nice_plug::prelude::*;

use crate::hub::{ModelHub, ProfileSlot};

/// Text a knob the loaded profile does not use shows.
pub const UNUSED_KNOB_TEXT: &str = "unused";

/// Default (normalised) value of a knob the starting profile does not use.
pub const UNUSED_KNOB_DEFAULT: f32 = 0.5;

/// Range of the input and output gains, in dB.
pub fn gain_range_db() -> FloatRange {
    FloatRange::Linear { min: -24.0, max: 24.0 }
}

/// Range of the dry/wet mix (0 = dry, 1 = wet; shown in %).
pub fn mix_range() -> FloatRange {
    FloatRange::Linear { min: 0.0, max: 1.0 }
}

/// Range of a knob parameter: the model's normalised input.
pub fn knob_range() -> FloatRange {
    FloatRange::Linear { min: 0.0, max: 1.0 }
}

/// What the plugin does with its output and the Capture Return.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plays the model (or, monitoring the device, the return).
    #[id = "play"]
    Play,
    /// Plays the capture signal into the device and records its return.
    #[id = "capture"]
    Capture,
    /// Records the main input and the return as training pairs while the user plays.
    #[id = "learn"]
    Learn,
}

/// What the output carries outside a capture: the model or the device (the return), for A/B.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monitor {
    /// The model's output.
    #[id = "model"]
    Model,
    /// The Capture Return, passed through.
    #[id = "device"]
    Device,
}

/// Range of the capture signal's output level, in dBFS (its peak).
pub fn capture_level_range_db() -> FloatRange {
    FloatRange::Linear { min: -40.0, max: 0.0 }
}

/// Default capture level, in dBFS: a DI-like level.
pub const DEFAULT_CAPTURE_LEVEL_DB: f32 = -12.0;

/// Capture level above which the editor warns of loud output, in dBFS.
pub const LOUD_CAPTURE_LEVEL_DB: f32 = -6.0;

/// A device knob the user names, so that captures at several settings train one
/// knob-conditioned profile. Plugin knob `index` carries its value while capturing.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaggedKnob {
    /// The knob's name on the device ("gain", "treble").
    pub name: String,
    /// Value at the plugin knob's 0, in the device's units.
    pub min: f32,
    /// Value at the plugin knob's 1.
    pub max: f32,
    /// Unit text ("", "dB").
    pub unit: String,
}

impl TaggedKnob {
    /// The device value a normalised plugin knob value stands for.
    pub fn value_at(&self, normalized: f32) -> f32 {
        self.min + (self.max - self.min) * normalized.clamp(0.0, 1.0)
    }
}

/// What the user set up for profiling, persisted with the project: the tagged knobs (one per
/// plugin knob, `None` for untagged), the kind of device, and the capture's length and
/// training threads. A project saved before a field existed loads it at its default.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CaptureSetup {
    /// Per plugin knob.
    pub knobs: [Option<TaggedKnob>; MAX_KNOBS],
    /// Length of the capture signal, in seconds.
    pub capture_seconds: f32,
    /// Training worker threads (0: all cores but one).
    pub threads: usize,
    /// Most audio kept in memory, over all captures and learned pairs, in seconds.
    pub max_capture_seconds: f32,
    /// Model size preset a capture trains (`feather`, `lite`, `standard`...).
    pub model_size: String,
    /// Training time budget of one session, in seconds.
    pub train_seconds: f32,
    /// Step budget of one session (0: none, the time budget alone).
    pub train_steps: u64,
    /// What kind of device is captured: an amp or pedal (the capture signal, a WaveNet) or
    /// a compressor (the dynamics signal, the dynamics model).
    pub effect: EffectKind,
}

/// Default length of an in-plugin capture, in seconds: long enough to train on (the
/// ablation of issue 12: 75 s of the signal already within 1.5x of 180), short enough that
/// the first model plays within a minute of pressing Capture.
pub const DEFAULT_CAPTURE_SECONDS: f32 = 40.0;

/// Default training budget of one in-plugin session, in seconds (Keep or Stop end it
/// sooner).
pub const DEFAULT_TRAIN_SECONDS: f32 = 300.0;

/// Default cap on captured audio kept in memory, in seconds (20 minutes).
pub const DEFAULT_MAX_CAPTURE_SECONDS: f32 = 1_200.0;

impl Default for CaptureSetup {
    fn default() -> Self {
        CaptureSetup {
            knobs: Default::default(),
            capture_seconds: DEFAULT_CAPTURE_SECONDS,
            threads: 0,
            max_capture_seconds: DEFAULT_MAX_CAPTURE_SECONDS,
            model_size: "feather".into(),
            train_seconds: DEFAULT_TRAIN_SECONDS,
            train_steps: 0,
            effect: EffectKind::AmpCab,
        }
    }
}

impl CaptureSetup {
    /// The tagged knobs (in plugin knob order) as a capture plan sees them.
    pub fn plan_knobs(&self) -> Vec<PlanKnob> {
        self.knobs
            .iter()
            .flatten()
            .map(|tag| PlanKnob {
                name: tag.name.clone(),
                min: tag.min.min(tag.max),
                max: tag.max.max(tag.min),
            })
            .collect()
    }

    /// Worker threads to train with: the setting, or all cores but one.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        cores.saturating_sub(1).max(1)
    }
}

/// Smoothing time of the gains (applied in linear amplitude, logarithmically), in ms.
pub const GAIN_SMOOTHING_MS: f32 = 30.0;
/// Smoothing time of the mix and the knobs, in ms.
pub const MIX_SMOOTHING_MS: f32 = 30.0;
/// Duration of the bypass crossfade, in ms.
pub const BYPASS_FADE_MS: f32 = 10.0;

/// What each knob means under the loaded profile (`None` = the knob is unused).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnobLabels {
    /// Per knob parameter, in model input order.
    pub knobs: [Option<KnobDescriptor>; MAX_KNOBS],
}

impl KnobLabels {
    /// The labels of a profile header (all unused for `None`).
    pub fn from_meta(meta: Option<&ProfileMeta>) -> Self {
        let mut labels = KnobLabels::default();
        if let Some(meta) = meta {
            for (slot, knob) in labels.knobs.iter_mut().zip(&meta.knobs) {
                *slot = Some(knob.clone());
            }
        }
        labels
    }
}

/// Decimals shown for a knob with range `min..max`: whole numbers for wide ranges, two
/// decimals for ranges under 2 units, else one.
fn knob_decimals(knob: &KnobDescriptor) -> usize {
    let span = (knob.max - knob.min).abs();
    if span >= 100.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    }
}

/// Shows a knob's normalised `value` in the profile's unit and range ("6.5", "-3.0 dB").
pub fn format_knob(knob: Option<&KnobDescriptor>, value: f32) -> String {
    match knob {
        None => UNUSED_KNOB_TEXT.to_string(),
        Some(knob) => {
            let decimals = knob_decimals(knob);
            let plain = knob.denormalize(value);
            // Avoid showing "-0.0".
            let plain = if plain.abs() < 0.5 * 10f32.powi(-(decimals as i32)) {
                0.0
            } else {
                plain
            };
            if knob.unit.trim().is_empty() {
                format!("{plain:.decimals$}")
            } else {
                format!("{plain:.decimals$} {}", knob.unit.trim())
            }
        }
    }
}

/// Parses text in the knob's unit (the unit suffix is optional) back to its normalised value,
/// clamped to the range. For an unused knob, a plain 0..1 number is accepted.
pub fn parse_knob(knob: Option<&KnobDescriptor>, text: &str) -> Option<f32> {
    let text = text.trim();
    match knob {
        None => text
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| v.clamp(0.0, 1.0)),
        Some(knob) => {
            let unit = knob.unit.trim();
            let split = text.len().checked_sub(unit.len()).filter(|&i| text.is_char_boundary(i));
            let number = match split {
                Some(i) if !unit.is_empty() && text[i..].eq_ignore_ascii_case(unit) => &text[..i],
                _ => text,
            };
            let plain = number.trim().parse::<f32>().ok().filter(|v| v.is_finite())?;
            Some(knob.normalize(plain))
        }
    }
}

/// Doppel's host parameters and persisted fields.
#[derive(Params)]
pub struct DoppelParams {
    /// Gain before the model, in dB.
    #[id = "input_gain"]
    pub input_gain_db: FloatParam,
    /// Gain after the dry/wet mix, in dB.
    #[id = "output_gain"]
    pub output_gain_db: FloatParam,
    /// Dry/wet mix, 0..1 (shown in %).
    #[id = "mix"]
    pub mix: FloatParam,
    /// Host bypass; crossfades to the (latency-aligned) dry input.
    #[id = "bypass"]
    pub bypass: BoolParam,
    /// Model knob 1 (normalised 0..1; meaning from the profile).
    #[id = "knob1"]
    pub knob1: FloatParam,
    /// Model knob 2.
    #[id = "knob2"]
    pub knob2: FloatParam,
    /// Model knob 3.
    #[id = "knob3"]
    pub knob3: FloatParam,
    /// Model knob 4.
    #[id = "knob4"]
    pub knob4: FloatParam,
    /// Play, Capture or Learn.
    #[id = "mode"]
    pub mode: EnumParam<Mode>,
    /// Model or Device on the output (outside a capture).
    #[id = "monitor"]
    pub monitor: EnumParam<Monitor>,
    /// Peak level of the capture signal on the output, in dBFS.
    #[id = "capture_level"]
    pub capture_level_db: FloatParam,
    /// The loaded profile, persisted in the plugin state (see [`crate::state`]).
    #[persist = "profile"]
    pub profile: ProfileSlot,
    /// Tagged knobs and capture settings.
    #[persist = "capture_setup"]
    pub capture_setup: Arc<RwLock<CaptureSetup>>,
}

impl DoppelParams {
    /// Parameters wired to `hub`, whose knob labels their formatters read. `knob_defaults` are
    /// the knobs' default (normalised) values: the defaults of the profile a new instance starts
    /// with, so that an untouched instance plays the profile as its trainer meant.
    pub fn new(hub: Arc<ModelHub>, labels: Arc<ArcSwap<KnobLabels>>, knob_defaults: [f32; MAX_KNOBS]) -> Self {
        let gain = |name: &str| {
            FloatParam::new(name, 0.0, gain_range_db())
                .with_unit(" dB")
                .with_step_size(0.1)
                .with_value_to_string(formatters::v2s_f32_rounded(1))
        };
        let knob = |index: usize| {
            let (show, parse) = (labels.clone(), labels.clone());
            let default = knob_defaults[index].clamp(0.0, 1.0);
            FloatParam::new(format!("Knob {}", index + 1), default, knob_range())
                .with_value_to_string(Arc::new(move |v| format_knob(show.load().knobs[index].as_ref(), v)))
                .with_string_to_value(Arc::new(move |s| parse_knob(parse.load().knobs[index].as_ref(), s)))
        };
        DoppelParams {
            input_gain_db: gain("Input Gain"),
            output_gain_db: gain("Output Gain"),
            mix: FloatParam::new("Mix", 1.0, mix_range())
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            knob1: knob(0),
            knob2: knob(1),
            knob3: knob(2),
            knob4: knob(3),
            mode: EnumParam::new("Mode", Mode::Play),
            monitor: EnumParam::new("Monitor", Monitor::Model),
            capture_level_db: FloatParam::new("Capture Level", DEFAULT_CAPTURE_LEVEL_DB, capture_level_range_db())
                .with_unit(" dB")
                .with_step_size(0.5)
                .with_value_to_string(formatters::v2s_f32_rounded(1)),
            profile: ProfileSlot(hub),
            capture_setup: Arc::new(RwLock::new(CaptureSetup::default())),
        }
    }

    /// The normalised default of every knob under `meta` (0.5 for knobs it does not use).
    pub fn knob_defaults(meta: Option<&ProfileMeta>) -> [f32; MAX_KNOBS] {
        let labels = KnobLabels::from_meta(meta);
        labels
            .knobs
            .map(|knob| knob.map_or(UNUSED_KNOB_DEFAULT, |k| k.normalize(k.default)))
    }

    /// The knob parameters in model input order.
    pub fn knobs(&self) -> [&FloatParam; MAX_KNOBS] {
        [&self.knob1, &self.knob2, &self.knob3, &self.knob4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knob(name: &str, min: f32, max: f32, unit: &str) -> KnobDescriptor {
        KnobDescriptor {
            name: name.into(),
            min,
            max,
            default: min,
            unit: unit.into(),
        }
    }

    fn params_with(knobs: Vec<KnobDescriptor>) -> DoppelParams {
        let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
        let (hub, _player) = ModelHub::new(labels.clone());
        let mut new_labels = KnobLabels::default();
        for (slot, k) in new_labels.knobs.iter_mut().zip(knobs) {
            *slot = Some(k);
        }
        labels.store(Arc::new(new_labels));
        DoppelParams::new(hub, labels, [UNUSED_KNOB_DEFAULT; MAX_KNOBS])
    }

    #[test]
    fn knobs_show_and_parse_in_the_profile_unit() {
        let params = params_with(vec![knob("gain", 0.0, 10.0, ""), knob("level", -12.0, 0.0, "dB")]);
        assert_eq!(params.knob1.normalized_value_to_string(0.65, true), "6.5");
        assert_eq!(params.knob2.normalized_value_to_string(0.75, true), "-3.0 dB");
        assert_eq!(params.knob3.normalized_value_to_string(0.3, true), UNUSED_KNOB_TEXT);
        let parsed = params.knob1.string_to_normalized_value("6.5").unwrap();
        assert!((parsed - 0.65).abs() < 1e-6, "{parsed}");
        let parsed = params.knob2.string_to_normalized_value("-3.0 dB").unwrap();
        assert!((parsed - 0.75).abs() < 1e-6, "{parsed}");
        let parsed = params.knob2.string_to_normalized_value("-3 db").unwrap();
        assert!((parsed - 0.75).abs() < 1e-6, "{parsed}");
        assert_eq!(
            params.knob2.string_to_normalized_value("+40 dB"),
            Some(1.0),
            "clamped to the range"
        );
        assert_eq!(params.knob1.string_to_normalized_value("loud"), None);
    }

    #[test]
    fn display_round_trips_over_the_range() {
        let params = params_with(vec![knob("gain", 0.0, 10.0, ""), knob("level", -12.0, 0.0, "dB")]);
        for step in 0..=100 {
            let value = step as f32 / 100.0;
            // Half a displayed step (0.1 unit over a 10- or 12-unit span) plus float slack.
            for (param, tolerance) in [(&params.knob1, 0.05 / 10.0 + 1e-4), (&params.knob2, 0.05 / 12.0 + 1e-4)] {
                let text = param.normalized_value_to_string(value, true);
                let back = param.string_to_normalized_value(&text).unwrap();
                assert!((back - value).abs() <= tolerance, "{text}: {value} -> {back}");
            }
        }
    }

    #[test]
    fn labels_follow_the_profile_and_decimals_the_range() {
        assert_eq!(format_knob(Some(&knob("freq", 20.0, 20_000.0, "Hz")), 0.5), "10010 Hz");
        assert_eq!(format_knob(Some(&knob("blend", 0.0, 1.0, "")), 0.25), "0.25");
        assert_eq!(
            format_knob(Some(&knob("trim", -1.0, 1.0, "")), 0.5),
            "0.0",
            "no \"-0.0\""
        );
        assert_eq!(format_knob(None, 0.5), UNUSED_KNOB_TEXT);
        assert_eq!(parse_knob(None, "0.4"), Some(0.4));
        let labels = KnobLabels::from_meta(None);
        assert!(labels.knobs.iter().all(Option::is_none));
    }

    #[test]
    fn knob_defaults_come_from_the_profile() {
        let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
        let (hub, _player) = ModelHub::new(labels.clone());
        let mut defaults = [UNUSED_KNOB_DEFAULT; MAX_KNOBS];
        defaults[0] = 0.7;
        let params = DoppelParams::new(hub, labels, defaults);
        assert_eq!(params.knob1.default_plain_value(), 0.7);
        assert_eq!(params.knob1.value(), 0.7);
        assert_eq!(params.knob2.value(), UNUSED_KNOB_DEFAULT);
        assert_eq!(DoppelParams::knob_defaults(None), [UNUSED_KNOB_DEFAULT; MAX_KNOBS]);
    }

    #[test]
    fn gains_and_mix_format_with_units() {
        let params = params_with(Vec::new());
        let normalized = gain_range_db().normalize(-6.0);
        assert_eq!(
            params.input_gain_db.normalized_value_to_string(normalized, true),
            "-6.0 dB"
        );
        assert_eq!(params.mix.normalized_value_to_string(0.5, true), "50%");
        assert!(params.bypass.flags().contains(ParamFlags::BYPASS));
    }

    #[test]
    fn a_capture_setup_saved_before_the_device_kind_loads_as_an_amp() {
        // What a project saved by an earlier version holds (no `effect`).
        let old = r#"{"knobs":[null,null,null,null],"capture_seconds":30.0,"threads":0,"max_capture_seconds":1200.0,"model_size":"feather","train_seconds":300.0,"train_steps":0}"#;
        let setup: CaptureSetup = serde_json::from_str(old).unwrap();
        assert_eq!(setup.effect, EffectKind::AmpCab);
        assert_eq!(setup.capture_seconds, 30.0);
        let compressor = CaptureSetup {
            effect: EffectKind::Compressor,
            ..CaptureSetup::default()
        };
        let text = serde_json::to_string(&compressor).unwrap();
        assert!(text.contains(r#""effect":"compressor""#), "{text}");
        assert_eq!(serde_json::from_str::<CaptureSetup>(&text).unwrap(), compressor);
    }
}
