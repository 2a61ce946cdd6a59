//! Doppel, the plugin: the nice-plug `Plugin` impl, CLAP and VST3 exports. `process` and
//! `reset` run on the audio thread; construction, `activate` and the editor elsewhere.
//!
//! The signal path lives in [`dsp::Processor`], model loading in [`hub::ModelHub`] (off the
//! audio thread) and [`swap`] (the lock-free hand-over), the persisted profile in [`state`].
//!
//! Where the first model comes from, in priority order: the plugin state (`profile` field),
//! the file named by the runtime environment variable [`PROFILE_ENV_VAR`] (`DOPPEL_PROFILE`,
//! read when the instance is created and, if it was unset then, again at activation unless a
//! state brought a profile), and the profile baked in at build time from the build-time
//! variable `DOPPEL_DEFAULT_PROFILE` (see `build.rs`). The knob parameters' defaults are the
//! defaults of the profile a new instance starts with.

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState};

pub mod capture;
pub mod dsp;
pub mod editor;
pub mod hub;
pub mod params;
pub mod rig;
pub mod state;
pub mod swap;
pub mod trainer;

use dsp::Controls;
use hub::ModelHub;
use params::{CaptureSetup, DoppelParams, KnobLabels};
use rig::{ProfilingControls, Rig};

/// The profile baked in at build time (`DOPPEL_DEFAULT_PROFILE`), empty when none was given.
pub const DEFAULT_PROFILE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default_profile.doppel"));

/// Runtime environment variable naming a `.doppel` file to load at activation when the plugin
/// state carries no profile (host tests use it).
pub const PROFILE_ENV_VAR: &str = "DOPPEL_PROFILE";

/// Name of the sidechain input that will carry a captured device's output.
pub const CAPTURE_RETURN_PORT: &str = "Capture Return";

/// The Doppel plugin instance.
pub struct Doppel {
    params: Arc<DoppelParams>,
    rig: Rig,
    editor_state: Arc<EguiEditorState>,
    /// Whether activation already looked at `DOPPEL_PROFILE`.
    env_profile_checked: bool,
    /// Latency last reported to the host, in samples.
    reported_latency_samples: u32,
    /// Whether the host renders offline (from the last activation).
    offline: bool,
}

impl Default for Doppel {
    fn default() -> Self {
        let labels = Arc::new(ArcSwap::from_pointee(KnobLabels::default()));
        let setup = Arc::new(RwLock::new(CaptureSetup::default()));
        let rig = Rig::new(labels.clone(), setup.clone());
        let env_profile_checked = load_initial_profile(&rig.hub);
        let knob_defaults = DoppelParams::knob_defaults(rig.hub.status().meta.as_deref());
        let mut params = DoppelParams::new(rig.hub.clone(), labels, knob_defaults);
        params.capture_setup = setup;
        Doppel {
            params: Arc::new(params),
            rig,
            offline: false,
            editor_state: editor::default_state(),
            env_profile_checked,
            reported_latency_samples: 0,
        }
    }
}

/// Loads the profile a new instance starts with: `DOPPEL_PROFILE` if set, else the baked-in
/// default. Errors stay visible in the editor; the instance then starts in pass-through.
/// Returns whether `DOPPEL_PROFILE` was set.
fn load_initial_profile(hub: &ModelHub) -> bool {
    match std::env::var_os(PROFILE_ENV_VAR).filter(|p| !p.is_empty()) {
        Some(path) => {
            if let Err(err) = hub.load_path(std::path::Path::new(&path)) {
                nice_warn!("{PROFILE_ENV_VAR}: {err:#}");
            }
            true
        }
        None => {
            if !DEFAULT_PROFILE.is_empty() {
                if let Err(err) = hub.load_bytes(DEFAULT_PROFILE, "built-in default") {
                    nice_warn!("built-in default profile: {err:#}");
                }
            }
            false
        }
    }
}

impl Doppel {
    /// The off-audio model loader shared with the editor (and later the trainer).
    pub fn hub(&self) -> &Arc<ModelHub> {
        &self.rig.hub
    }

    /// The parameters, typed (the `Plugin::params` trait method returns them type-erased).
    pub fn shared_params(&self) -> &Arc<DoppelParams> {
        &self.params
    }

    /// The current parameter values as processor targets.
    fn controls(&self) -> Controls {
        let p = &self.params;
        Controls {
            input_gain_db: p.input_gain_db.value(),
            output_gain_db: p.output_gain_db.value(),
            mix: p.mix.value(),
            bypass: p.bypass.value(),
            knobs: p.knobs().map(|k| k.value()),
        }
    }

    /// The current profiling parameters.
    fn profiling(&self, offline: bool) -> ProfilingControls {
        let p = &self.params;
        ProfilingControls {
            mode: p.mode.value(),
            monitor: p.monitor.value(),
            capture_level_db: p.capture_level_db.value(),
            offline,
        }
    }

    /// Loads `DOPPEL_PROFILE` if it was unset at creation, once, unless a restored state
    /// already brought a profile.
    fn load_env_profile(&mut self) {
        if self.env_profile_checked {
            return;
        }
        self.env_profile_checked = true;
        if self.rig.hub.restored_from_state() {
            return;
        }
        if let Some(path) = std::env::var_os(PROFILE_ENV_VAR).filter(|p| !p.is_empty()) {
            if let Err(err) = self.rig.hub.load_path(std::path::Path::new(&path)) {
                nice_warn!("{PROFILE_ENV_VAR}: {err:#}");
            }
        }
    }
}

const STEREO: AudioIOLayout = AudioIOLayout {
    main_input_channels: NonZeroU32::new(2),
    main_output_channels: NonZeroU32::new(2),
    names: PortNames {
        layout: Some("Stereo"),
        ..PortNames::const_default()
    },
    ..AudioIOLayout::const_default()
};

const MONO: AudioIOLayout = AudioIOLayout {
    main_input_channels: NonZeroU32::new(1),
    main_output_channels: NonZeroU32::new(1),
    names: PortNames {
        layout: Some("Mono"),
        ..PortNames::const_default()
    },
    ..AudioIOLayout::const_default()
};

const STEREO_WITH_CAPTURE_RETURN: AudioIOLayout = AudioIOLayout {
    main_input_channels: NonZeroU32::new(2),
    main_output_channels: NonZeroU32::new(2),
    aux_input_ports: &[new_nonzero_u32(2)],
    names: PortNames {
        layout: Some("Stereo with Capture Return"),
        aux_inputs: &[CAPTURE_RETURN_PORT],
        ..PortNames::const_default()
    },
    ..AudioIOLayout::const_default()
};

impl Plugin for Doppel {
    const NAME: &'static str = "Doppel";
    const VENDOR: &'static str = "Doppel";
    const URL: &'static str = "https://github.com/doppel-audio/doppel";
    const EMAIL: &'static str = "doppel@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    // The first layout is the one a host gets without negotiating (DawDreamer takes it): it
    // carries the Capture Return, so that capture and Learn work there too.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[STEREO_WITH_CAPTURE_RETURN, STEREO, MONO];

    type Editor = EguiEditor<editor::DoppelEditor>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.editor_state.clone(), self.params.clone(), &mut self.rig)
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // Kernels are built for sub-blocks of `swap::SUB_BLOCK_SAMPLES` and every scratch buffer
        // is a fixed array of that size, so nothing here depends on the host's block size.
        self.load_env_profile();
        self.rig.hub.collect_retired();
        let controls = self.controls();
        self.offline = buffer_config.process_mode == ProcessMode::Offline;
        self.rig.activate(buffer_config.sample_rate, &controls);
        self.reported_latency_samples = self.rig.processor().model().latency_samples();
        context.set_latency_samples(self.reported_latency_samples);
        true
    }

    fn reset(&mut self) {
        // Smoothers jump to the current values, so a reset instance renders deterministically.
        let controls = self.controls();
        self.rig.reset(&controls);
    }

    fn deactivate(&mut self) {
        self.rig.hub.collect_retired();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let controls = self.controls();
        let profiling = self.profiling(self.offline);
        let mut capture_return: [&[f32]; swap::MAX_CHANNELS] = [&[], &[]];
        let mut return_channels = 0;
        if let Some(aux_buffer) = aux.inputs.first() {
            for (slot, channel) in capture_return.iter_mut().zip(aux_buffer.as_slice_immutable()) {
                *slot = channel;
                return_channels += 1;
            }
        }
        self.rig.process(
            buffer.as_slice(),
            &capture_return[..return_channels],
            &controls,
            &profiling,
        );
        // A swapped-in model may report another latency (its training margin): tell the host.
        let latency_samples = self.rig.processor().model().latency_samples();
        if latency_samples != self.reported_latency_samples {
            self.reported_latency_samples = latency_samples;
            context.set_latency_samples(latency_samples);
        }
        ProcessStatus::Normal
    }
}

impl ClapPlugin for Doppel {
    const CLAP_ID: &'static str = "audio.doppel.doppel";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Plays learned models of amps, pedals and cabinets");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Stereo,
        ClapFeature::Mono,
        ClapFeature::Distortion,
    ];
}

impl Vst3Plugin for Doppel {
    const VST3_CLASS_ID: [u8; 16] = *b"DoppelNeuralFx01";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Distortion];
}

nice_export_clap!(Doppel);
nice_export_vst3!(Doppel);
