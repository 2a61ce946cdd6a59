//! The egui editor: parameters with the profile's knob labels, level meters with clip
//! indicators, profile loading, the loaded profile's details and the profiler (capture,
//! Learn, training). GUI thread only.

mod info;
mod profiler;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use doppel_engine::model::MAX_KNOBS;
use egui::{Color32, RichText};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp, RepaintNotifier,
};

use crate::capture::DeckStatus;
use crate::dsp::Meters;
use crate::hub::{HubStatus, ModelHub};
use crate::params::DoppelParams;
use crate::rig::Rig;
use crate::trainer::TrainerRemote;

/// Editor width, in logical pixels.
pub const EDITOR_WIDTH: f64 = 1120.0;
/// Editor height, in logical pixels.
pub const EDITOR_HEIGHT: f64 = 660.0;
/// Meter floor, in dBFS.
const METER_FLOOR_DB: f32 = -60.0;
/// Meter fall-back per frame, in dB.
const METER_FALL_DB: f32 = 1.5;
/// Colour of secondary text.
const DIM: Color32 = Color32::from_gray(140);
/// Colour of errors.
const ERROR: Color32 = Color32::from_rgb(235, 110, 100);
/// Peak at which a meter shows its clip indicator (full scale).
const CLIP_PEAK: f32 = 0.999;
/// How long a clip indicator stays lit after the last clipped sample.
const CLIP_HOLD: Duration = Duration::from_secs(2);

/// Profiles shipped with the plugin, listed in the editor: `(name, file bytes)`.
pub const SHIPPED_PROFILES: &[(&str, &[u8])] = &[(
    "Built-in tube amp (gain 8, tone 6), WaveNet feather",
    include_bytes!("../../profiles/tube_amp_gain8_tone6_wavenet_feather.doppel"),
)];

/// File name extensions the open dialog offers.
const MODEL_EXTENSIONS: &[&str] = &["doppel", "nam", "json", "aidax"];

/// The editor's initial size.
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(LogicalSize::new(EDITOR_WIDTH, EDITOR_HEIGHT), 1.0)
}

/// Creates the editor for the plugin's shared parts.
pub fn create(
    state: Arc<EguiEditorState>,
    params: Arc<DoppelParams>,
    rig: &mut Rig,
) -> Option<EguiEditor<DoppelEditor>> {
    let app = DoppelEditor {
        params,
        hub: rig.hub.clone(),
        meters: rig.meters.clone(),
        deck: rig.deck_status().clone(),
        trainer: rig.trainer().remote(),
        profiler: profiler::ProfilerUi::default(),
        loaded: channel(),
        dialog_open: false,
        gui_context: None,
        path_text: std::env::var(crate::PROFILE_ENV_VAR).unwrap_or_default(),
        meter_db: [METER_FLOOR_DB; 3],
        clipped_at: [None; 3],
    };
    create_egui_editor(
        state,
        RepaintNotifier::new(),
        EguiNiceSettings::default().with_tile("Doppel"),
        app,
    )
}

/// The editor's state (lives while the plugin lives; the window may open and close).
pub struct DoppelEditor {
    params: Arc<DoppelParams>,
    hub: Arc<ModelHub>,
    meters: Arc<Meters>,
    deck: Arc<DeckStatus>,
    trainer: TrainerRemote,
    profiler: profiler::ProfilerUi,
    gui_context: Option<GuiContext>,
    /// Contents of the profile path field.
    path_text: String,
    /// Displayed levels (input, output, capture return), in dBFS.
    meter_db: [f32; 3],
    /// When each meter last clipped.
    clipped_at: [Option<std::time::Instant>; 3],
    /// Loads finished off the GUI thread (the dialog's thread): `true` when one succeeded, so
    /// the knobs move to the new profile's defaults on the GUI thread.
    loaded: (Sender<bool>, Receiver<bool>),
    /// A file dialog is open.
    dialog_open: bool,
}

impl NiceEguiApp for DoppelEditor {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui_context = Some(nice_gui_ctx);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        self.hub.collect_retired();
        self.update_meters();
        let status = self.hub.status();
        let Some(gui_context) = self.gui_context.clone() else {
            return;
        };
        let setter = gui_context.param_setter();

        egui::Panel::top("header").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(RichText::new("Doppel").strong());
                let name = status
                    .meta
                    .as_ref()
                    .map_or("no profile loaded (pass-through)", |m| m.name.as_str());
                ui.label(RichText::new(name).size(16.0));
            });
        });
        egui::Panel::bottom("loader").show(ui, |ui| self.loader_ui(ui, &setter, &status));
        egui::Panel::left("controls")
            .exact_size(360.0)
            .resizable(false)
            .show(ui, |ui| {
                self.controls_ui(ui, &setter, &status);
            });
        egui::Panel::right("profiler")
            .exact_size(380.0)
            .resizable(false)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().id_salt("profiler_scroll").show(ui, |ui| {
                    self.profiler.ui(ui, &setter, &self.params, &self.deck, &self.trainer);
                });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            let host_sample_rate_hz = self.meters.host_sample_rate_hz.load(Ordering::Relaxed);
            egui::ScrollArea::vertical().show(ui, |ui| info::profile_ui(ui, &status, host_sample_rate_hz));
        });
        ui.ctx().request_repaint_after(Duration::from_millis(33));
    }
}

impl DoppelEditor {
    fn controls_ui(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, status: &HubStatus) {
        let params = self.params.clone();
        ui.add_space(4.0);
        ui.label(RichText::new("Model knobs").strong());
        egui::Grid::new("knobs")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                for (index, param) in params.knobs().into_iter().enumerate().take(MAX_KNOBS) {
                    let knob = status.meta.as_ref().and_then(|m| m.knobs.get(index));
                    match knob {
                        Some(knob) => {
                            ui.label(&knob.name);
                            ui.add(ParamSlider::for_param(param, setter).with_width(180.0));
                        }
                        None => {
                            ui.label(RichText::new(format!("Knob {}", index + 1)).color(DIM));
                            ui.add_enabled(false, ParamSlider::for_param(param, setter).with_width(180.0));
                        }
                    }
                    ui.end_row();
                }
            });
        ui.separator();
        ui.label(RichText::new("Levels").strong());
        egui::Grid::new("levels")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                ui.label("Input gain");
                ui.add(ParamSlider::for_param(&params.input_gain_db, setter).with_width(180.0));
                ui.end_row();
                ui.label("Output gain");
                ui.add(ParamSlider::for_param(&params.output_gain_db, setter).with_width(180.0));
                ui.end_row();
                ui.label("Mix");
                ui.add(ParamSlider::for_param(&params.mix, setter).with_width(180.0));
                ui.end_row();
                ui.label("Bypass");
                let mut bypass = params.bypass.value();
                let text = if bypass { "bypassed" } else { "active" };
                if ui.checkbox(&mut bypass, text).changed() {
                    setter.begin_set_parameter(&params.bypass);
                    setter.set_parameter(&params.bypass, bypass);
                    setter.end_set_parameter(&params.bypass);
                }
                ui.end_row();
            });
        ui.separator();
        ui.label(RichText::new("Meters").strong());
        egui::Grid::new("meters")
            .num_columns(3)
            .spacing([12.0, 4.0])
            .show(ui, |ui| {
                for ((label, db), clipped_at) in ["Input", "Output", crate::CAPTURE_RETURN_PORT]
                    .iter()
                    .zip(self.meter_db)
                    .zip(self.clipped_at)
                {
                    ui.label(*label);
                    let fraction = ((db - METER_FLOOR_DB) / -METER_FLOOR_DB).clamp(0.0, 1.0);
                    let text = if db <= METER_FLOOR_DB {
                        "silent".to_string()
                    } else {
                        format!("{db:.1} dBFS")
                    };
                    ui.add(egui::ProgressBar::new(fraction).desired_width(200.0).text(text));
                    let clipping = clipped_at.is_some_and(|t| t.elapsed() < CLIP_HOLD);
                    let clip = RichText::new("CLIP").strong();
                    ui.label(if clipping {
                        clip.color(ERROR)
                    } else {
                        clip.color(Color32::from_gray(60))
                    });
                    ui.end_row();
                }
            });
    }

    fn loader_ui(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, status: &HubStatus) {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.label("Profile file");
            let field = egui::TextEdit::singleline(&mut self.path_text)
                .hint_text("/path/to/model.doppel")
                .desired_width(ui.available_width() - 70.0);
            let response = ui.add(field);
            let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Load").clicked() || enter {
                let path = PathBuf::from(self.path_text.trim());
                if !self.path_text.trim().is_empty() {
                    self.load_in_background(None, Some(path));
                }
            }
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.dialog_open, egui::Button::new("Open..."))
                .on_hover_text(".doppel profiles, NAM .nam and AIDA-X .json models (imported on the fly)")
                .clicked()
            {
                self.dialog_open = true;
                self.load_in_background(Some(()), None);
            }
            ui.label("Shipped:");
            for (index, (name, _)) in SHIPPED_PROFILES.iter().enumerate() {
                if ui.button(*name).clicked() {
                    let loaded = self.hub.load_bytes(SHIPPED_PROFILES[index].1, name).is_ok();
                    let _ = self.loaded.0.send(loaded);
                }
            }
        });
        while let Ok(loaded) = self.loaded.1.try_recv() {
            self.dialog_open = false;
            if loaded {
                self.set_knobs_to_defaults(setter);
            }
        }
        match &status.last_error {
            Some(error) => {
                ui.label(RichText::new(format!("Load failed: {error}")).color(ERROR));
            }
            None if !status.source.is_empty() => {
                ui.label(RichText::new(format!("Loaded from {}", status.source)).color(DIM));
            }
            None => {
                ui.label(RichText::new("No profile loaded: audio passes through.").color(DIM));
            }
        }
        ui.add_space(2.0);
    }

    /// Loads a model off the GUI thread: the file at `path`, or (with `dialog`) the one the
    /// user picks in the system file dialog. The result comes back through `loaded`.
    fn load_in_background(&mut self, dialog: Option<()>, path: Option<PathBuf>) {
        let hub = self.hub.clone();
        let done = self.loaded.0.clone();
        let spawned = std::thread::Builder::new().name("doppel-load".into()).spawn(move || {
            let path = match (dialog, path) {
                (Some(()), _) => rfd::FileDialog::new()
                    .set_title("Load a profile or model")
                    .add_filter("Doppel, NAM or AIDA-X model", MODEL_EXTENSIONS)
                    .pick_file(),
                (None, path) => path,
            };
            // The hub keeps any error for the status line.
            let loaded = path.is_some_and(|p| hub.load_any_path(&p).is_ok());
            let _ = done.send(loaded);
        });
        if spawned.is_err() {
            self.dialog_open = false;
        }
    }

    /// Moves the knobs to the loaded profile's defaults.
    fn set_knobs_to_defaults(&mut self, setter: &ParamSetter) {
        let Some(meta) = self.hub.status().meta else {
            return;
        };
        for (param, knob) in self.params.knobs().into_iter().zip(&meta.knobs) {
            setter.begin_set_parameter(param);
            setter.set_parameter(param, knob.normalize(knob.default));
            setter.end_set_parameter(param);
        }
    }

    fn update_meters(&mut self) {
        let peaks = [
            &self.meters.input_peak,
            &self.meters.output_peak,
            &self.meters.capture_return_peak,
        ];
        for ((shown, peak), clipped_at) in self.meter_db.iter_mut().zip(peaks).zip(&mut self.clipped_at) {
            let peak = Meters::take(peak);
            if peak >= CLIP_PEAK {
                *clipped_at = Some(std::time::Instant::now());
            }
            let db = util::gain_to_db(peak).max(METER_FLOOR_DB);
            *shown = db.max(*shown - METER_FALL_DB);
        }
    }
}
