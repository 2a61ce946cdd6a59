//! `doppel-standalone`: Doppel as a standalone application using nice-plug's standalone
//! wrapper (JACK/ALSA or, with `--backend dummy`, no audio device). Main thread + audio thread.

use nice_plug::prelude::*;

fn main() {
    nice_export_standalone::<doppel::Doppel>();
}
