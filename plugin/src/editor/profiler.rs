//! The editor's profiler panel: routing, Mode and Monitor, the capture level (with its loud
//! warning), the state (idle / capturing / checking / training / ready) with a live loss
//! curve, Keep / Revert / Export, the capture plan's next setting, the device kind (amp or
//! compressor) and the tagged knobs. GUI thread only.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use doppel_engine::train::EffectKind;
use egui::{Color32, RichText};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;

use crate::capture::{DeckPhase, DeckStatus};
use crate::params::{DoppelParams, Mode, Monitor, TaggedKnob, DEFAULT_MAX_CAPTURE_SECONDS, LOUD_CAPTURE_LEVEL_DB};
use crate::trainer::{Command, TrainerPhase, TrainerRemote};

const DIM: Color32 = Color32::from_gray(140);
const WARNING: Color32 = Color32::from_rgb(230, 160, 40);

/// The sentence that says how to wire a device.
pub const ROUTING_TEXT: &str = "Send Doppel's output to the device (re-amp through your interface) and bring the \
     device's output back on the Capture Return sidechain.";

/// What the panel keeps between frames.
#[derive(Default)]
pub struct ProfilerUi {
    /// Contents of the export path field.
    pub export_path: String,
}

/// The state line the user reads, from the deck's and the trainer's phases.
pub fn state_text(deck: &DeckStatus, trainer: &TrainerRemote) -> String {
    let status = trainer.status();
    match (deck.phase(), status.phase()) {
        (DeckPhase::Preparing, _) => "capturing: preparing the signal".into(),
        (DeckPhase::Capturing, _) => format!(
            "capturing: {:.0} %",
            100.0 * deck.capture_progress.load(Ordering::Relaxed)
        ),
        (_, TrainerPhase::Checking) => "checking the take".into(),
        (_, TrainerPhase::Training) => {
            let best = status.best_esr.load(Ordering::Relaxed);
            format!(
                "training: step {}, loss {:.4}, best ESR {}, {:.0} s",
                status.steps.load(Ordering::Relaxed),
                status.loss.load(Ordering::Relaxed),
                if best > 0.0 { format!("{best:.4}") } else { "-".into() },
                status.elapsed_seconds.load(Ordering::Relaxed)
            )
        }
        (_, TrainerPhase::Ready) => format!(
            "ready: best ESR {:.4} after {} steps",
            status.best_esr.load(Ordering::Relaxed),
            status.steps.load(Ordering::Relaxed)
        ),
        (_, TrainerPhase::Idle) => "idle".into(),
    }
}

impl ProfilerUi {
    /// Draws the panel.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        setter: &ParamSetter,
        params: &DoppelParams,
        deck: &DeckStatus,
        trainer: &TrainerRemote,
    ) {
        ui.add_space(4.0);
        ui.label(RichText::new("Profiler").strong());
        ui.label(RichText::new(ROUTING_TEXT).color(DIM));
        choice_row(
            ui,
            setter,
            "Mode",
            &params.mode,
            &[(Mode::Play, "Play"), (Mode::Capture, "Capture"), (Mode::Learn, "Learn")],
        );
        choice_row(
            ui,
            setter,
            "Monitor",
            &params.monitor,
            &[(Monitor::Model, "Model"), (Monitor::Device, "Device")],
        );
        ui.horizontal(|ui| {
            ui.label("Capture level");
            ui.add(ParamSlider::for_param(&params.capture_level_db, setter).with_width(150.0));
        });
        let level = params.capture_level_db.value();
        if level > LOUD_CAPTURE_LEVEL_DB {
            ui.label(
                RichText::new(format!(
                    "Loud: Capture plays a test signal peaking at {level:.0} dBFS into the device. Turn speakers down first."
                ))
                .color(WARNING),
            );
        }
        ui.separator();
        ui.label(RichText::new(state_text(deck, trainer)).strong());
        if deck.phase() == DeckPhase::Capturing {
            ui.add(egui::ProgressBar::new(deck.capture_progress.load(Ordering::Relaxed)).desired_width(280.0));
        }
        let status = trainer.status();
        let message = status.message();
        if !message.is_empty() {
            ui.label(&message);
        }
        let verdict = status.take_verdict();
        if !verdict.is_empty() && verdict != message {
            ui.label(RichText::new(format!("Last take: {verdict}")).color(DIM));
        }
        let plan = status.plan_hint();
        if !plan.is_empty() {
            ui.label(&plan);
        }
        let (sent, dropped) = (
            deck.learn_chunks_sent.load(Ordering::Relaxed),
            deck.learn_chunks_dropped.load(Ordering::Relaxed),
        );
        if sent + dropped > 0 {
            ui.label(
                RichText::new(format!(
                    "Learn: {sent} chunks recorded, {dropped} dropped, {:.1} s waiting",
                    status.learn_pending_seconds.load(Ordering::Relaxed)
                ))
                .color(DIM),
            );
        }
        let dropped = status.captures_dropped.load(Ordering::Relaxed);
        let cap_seconds = params
            .capture_setup
            .read()
            .map_or(DEFAULT_MAX_CAPTURE_SECONDS, |setup| setup.max_capture_seconds);
        ui.label(
            RichText::new(format!(
                "{} captures held ({:.0} s of {:.0} min){}",
                status.captures.load(Ordering::Relaxed),
                status.held_seconds.load(Ordering::Relaxed),
                cap_seconds / 60.0,
                if dropped > 0 {
                    format!(", {dropped} oldest dropped to stay under it")
                } else {
                    String::new()
                }
            ))
            .color(DIM),
        );
        loss_plot(ui, trainer);
        ui.horizontal_wrapped(|ui| {
            let training = status.phase() == TrainerPhase::Training;
            if ui.add_enabled(!training, egui::Button::new("Train")).clicked() {
                trainer.send(Command::Start);
            }
            if ui.add_enabled(training, egui::Button::new("Pause")).clicked() {
                trainer.send(Command::Pause);
            }
            if ui.add_enabled(training, egui::Button::new("Resume")).clicked() {
                trainer.send(Command::Resume);
            }
            if ui.button("Keep").clicked() {
                trainer.send(Command::Keep);
            }
            if ui.button("Revert").clicked() {
                trainer.send(Command::Revert);
            }
            if ui.button("Clear captures").clicked() {
                trainer.send(Command::Reset);
            }
        });
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.export_path)
                    .hint_text("/path/to/export")
                    .desired_width(150.0),
            );
            let path = PathBuf::from(self.export_path.trim());
            let has_path = !self.export_path.trim().is_empty();
            if ui.add_enabled(has_path, egui::Button::new("Export profile")).clicked() {
                let file = if path.extension().is_some() {
                    path.clone()
                } else {
                    path.with_extension("doppel")
                };
                trainer.send(Command::ExportProfile(file));
            }
            if ui.add_enabled(has_path, egui::Button::new("Export captures")).clicked() {
                trainer.send(Command::ExportCaptures(path));
            }
        });
        ui.separator();
        tagged_knobs_ui(ui, params);
    }
}

/// A labelled row of buttons, one per value of an enum parameter; clicking one sets it.
fn choice_row<T: Enum + PartialEq + Copy + 'static>(
    ui: &mut egui::Ui,
    setter: &ParamSetter,
    label: &str,
    param: &EnumParam<T>,
    choices: &[(T, &str)],
) {
    ui.horizontal(|ui| {
        ui.label(label);
        for &(value, text) in choices {
            if ui.selectable_label(param.value() == value, text).clicked() {
                setter.begin_set_parameter(param);
                setter.set_parameter(param, value);
                setter.end_set_parameter(param);
            }
        }
    });
}

fn loss_plot(ui: &mut egui::Ui, trainer: &TrainerRemote) {
    let (loss, validation) = trainer.status().curves();
    let log = |points: Vec<[f64; 2]>| -> Vec<[f64; 2]> {
        points
            .into_iter()
            .filter(|p| p[1] > 0.0)
            .map(|[x, y]| [x, y.log10()])
            .collect()
    };
    Plot::new("loss_curve")
        .height(130.0)
        .legend(Legend::default())
        .y_axis_label("log10")
        .show(ui, |plot| {
            plot.line(Line::new("loss", PlotPoints::from(log(loss))));
            plot.line(Line::new("validation ESR", PlotPoints::from(log(validation))));
        });
}

/// Names and ranges of the device knobs that the plugin's knobs tag captures with, and the
/// capture and training settings.
fn tagged_knobs_ui(ui: &mut egui::Ui, params: &DoppelParams) {
    {
        let mut setup = params.capture_setup.write().unwrap_or_else(|e| e.into_inner());
        ui.horizontal(|ui| {
            ui.label("Device");
            let kinds = [
                (
                    EffectKind::AmpCab,
                    "Amp / pedal",
                    "The capture signal; trains a WaveNet",
                ),
                (
                    EffectKind::Compressor,
                    "Compressor",
                    "The dynamics signal (level steps, bursts, program); trains the dynamics model",
                ),
            ];
            for (kind, text, hover) in kinds {
                if ui
                    .selectable_label(setup.effect == kind, text)
                    .on_hover_text(hover)
                    .clicked()
                {
                    setup.effect = kind;
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label("Capture length");
            ui.add(
                egui::DragValue::new(&mut setup.capture_seconds)
                    .range(10.0..=600.0)
                    .suffix(" s"),
            );
            ui.label("Training threads");
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            ui.add(egui::DragValue::new(&mut setup.threads).range(0..=cores))
                .on_hover_text("0: all cores but one");
        });
    }
    ui.label(RichText::new("Tagged knobs").strong());
    ui.label(RichText::new("Name a device knob to tag captures with plugin knob N's value over its range.").color(DIM));
    let mut setup = params.capture_setup.write().unwrap_or_else(|e| e.into_inner());
    egui::Grid::new("tagged_knobs")
        .num_columns(5)
        .spacing([6.0, 4.0])
        .show(ui, |ui| {
            for (index, slot) in setup.knobs.iter_mut().enumerate() {
                ui.label(format!("Knob {}", index + 1));
                let mut name = slot.as_ref().map_or(String::new(), |k| k.name.clone());
                let changed = ui
                    .add(
                        egui::TextEdit::singleline(&mut name)
                            .hint_text("name")
                            .desired_width(90.0),
                    )
                    .changed();
                if changed {
                    let name = name.trim().to_string();
                    *slot = if name.is_empty() {
                        None
                    } else {
                        let old = slot.take().unwrap_or(TaggedKnob {
                            name: String::new(),
                            min: 0.0,
                            max: 10.0,
                            unit: String::new(),
                        });
                        Some(TaggedKnob { name, ..old })
                    };
                }
                match slot {
                    Some(knob) => {
                        ui.add(egui::DragValue::new(&mut knob.min).speed(0.1).prefix("min "));
                        ui.add(egui::DragValue::new(&mut knob.max).speed(0.1).prefix("max "));
                        ui.add(
                            egui::TextEdit::singleline(&mut knob.unit)
                                .hint_text("unit")
                                .desired_width(40.0),
                        );
                    }
                    None => {
                        ui.label("");
                        ui.label("");
                        ui.label("");
                    }
                }
                ui.end_row();
            }
        });
}
