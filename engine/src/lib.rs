//! Doppel's engine: everything that is not plugin-framework code.
//!
//! Models are defined twice: a candle `Module` for training ([`model`]) and a hand-written
//! streaming kernel for the audio thread ([`kernel`]), sharing variable names and checked
//! against each other in golden tests.

pub mod align;
pub mod dataset;
pub mod dsp;
pub mod interop;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod playback;
pub mod profile;
pub mod reference;
pub mod signal;
pub mod take;
pub mod train;
pub mod wav;

pub use kernel::StreamingModel;
pub use model::{ModelConfig, Size};
pub use profile::{Calibration, KnobDescriptor, Profile, ProfileMeta, Weights};
