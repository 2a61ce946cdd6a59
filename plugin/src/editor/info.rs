//! The editor's profile panel: what the loaded profile is, how accurate and how it was trained.
//! GUI thread only.

use doppel_engine::ProfileMeta;
use egui::{Color32, RichText};

use crate::hub::HubStatus;

/// Colour of secondary text.
const DIM: Color32 = Color32::from_gray(140);

/// Colour of warnings.
const WARNING: Color32 = Color32::from_rgb(230, 160, 40);

/// Shows the loaded profile's header (or a hint when none is loaded), warning when the host
/// runs at another sample rate than the profile was trained at (`host_sample_rate_hz` 0:
/// not activated yet).
pub fn profile_ui(ui: &mut egui::Ui, status: &HubStatus, host_sample_rate_hz: f32) {
    ui.add_space(4.0);
    ui.label(RichText::new("Profile").strong());
    let Some(meta) = status.meta.as_deref() else {
        ui.label(RichText::new("No profile loaded. Enter the path of a .doppel file below and press Load.").color(DIM));
        return;
    };
    egui::Grid::new("profile")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .striped(true)
        .show(ui, |ui| {
            row(ui, "Name", &meta.name);
            row(ui, "Architecture", &architecture_text(meta));
            row(
                ui,
                "Parameters",
                &format!("{} ({})", meta.model.parameter_count(), bytes_text(status.file_bytes)),
            );
            row(ui, "Sample rate", &format!("{} Hz", meta.sample_rate));
            row(ui, "Latency", &format!("{} samples", meta.latency_samples));
            let accuracy = match &meta.accuracy {
                Some(a) => format!(
                    "ESR {:.4}, pre-emph. {:.4} ({:.1} s held out)",
                    a.esr, a.esr_preemph, a.seconds
                ),
                None => "not measured".to_string(),
            };
            row(ui, "Accuracy", &accuracy);
            let (input_db, output_db) = doppel_engine::interop::calibration_gains_db(meta);
            if meta.calibration.is_some() {
                row(
                    ui,
                    "Calibration",
                    &format!("input {input_db:+.1} dB, output {output_db:+.1} dB (from the profile)"),
                );
            }
        });

    if host_sample_rate_hz > 0.0 && (host_sample_rate_hz - meta.sample_rate as f32).abs() > 0.5 {
        ui.label(
            RichText::new(format!(
                "The host runs at {host_sample_rate_hz:.0} Hz but this profile was trained at {} Hz: \
                 its filters shift with the rate, so it will not sound like the captured device. \
                 Run the session at {} Hz.",
                meta.sample_rate, meta.sample_rate
            ))
            .color(WARNING),
        );
    }

    ui.add_space(6.0);
    ui.label(RichText::new("Knobs").strong());
    if meta.knobs.is_empty() {
        ui.label(RichText::new("This model takes no knobs.").color(DIM));
    }
    egui::Grid::new("profile_knobs")
        .num_columns(3)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            for (index, knob) in meta.knobs.iter().enumerate() {
                let unit = if knob.unit.trim().is_empty() {
                    String::new()
                } else {
                    format!(" {}", knob.unit.trim())
                };
                ui.label(format!("{}.", index + 1));
                ui.label(&knob.name);
                ui.label(
                    RichText::new(format!(
                        "{} .. {}{unit}, default {}{unit}",
                        knob.min, knob.max, knob.default
                    ))
                    .color(DIM),
                );
                ui.end_row();
            }
        });

    ui.add_space(6.0);
    ui.label(RichText::new("Training").strong());
    match &meta.training {
        Some(t) => {
            egui::Grid::new("training")
                .num_columns(2)
                .spacing([12.0, 2.0])
                .show(ui, |ui| {
                    row(ui, "Audio", &format!("{:.1} s", t.data_seconds));
                    row(ui, "Steps", &format!("{} in {:.0} s", t.steps, t.wall_seconds));
                    if let Some((step, esr)) = t.validation_curve.last() {
                        row(ui, "Last validation", &format!("ESR {esr:.4} at step {step}"));
                    }
                    if let Some((step, loss)) = t.loss_curve.last() {
                        row(ui, "Last loss", &format!("{loss:.5} at step {step}"));
                    }
                    if !t.device_latency_samples.is_empty() {
                        let latencies: Vec<String> = t.device_latency_samples.iter().map(i64::to_string).collect();
                        row(ui, "Device latency", &format!("{} samples", latencies.join(", ")));
                    }
                    row(ui, "Seed", &t.seed.to_string());
                });
        }
        None => {
            ui.label(RichText::new("Not trained by Doppel (no training summary).").color(DIM));
        }
    }
    if !meta.notes.trim().is_empty() {
        ui.add_space(6.0);
        ui.label(RichText::new("Notes").strong());
        ui.label(meta.notes.trim());
    }
}

fn row(ui: &mut egui::Ui, label: &str, value: &str) {
    ui.label(RichText::new(label).color(DIM));
    ui.label(value);
    ui.end_row();
}

/// "wavenet, receptive field 4093 samples, 2 knobs".
fn architecture_text(meta: &ProfileMeta) -> String {
    let model = &meta.model;
    let knobs = match model.num_knobs() {
        1 => "1 knob".to_string(),
        n => format!("{n} knobs"),
    };
    match model.receptive_field() {
        1 => format!("{}, {knobs}", model.architecture()),
        rf => format!("{}, receptive field {rf} samples, {knobs}", model.architecture()),
    }
}

/// A byte count in B, KiB or MiB.
fn bytes_text(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B file"),
        b if b < 1 << 20 => format!("{:.1} KiB file", b as f64 / 1024.0),
        b => format!("{:.2} MiB file", b as f64 / (1 << 20) as f64),
    }
}
