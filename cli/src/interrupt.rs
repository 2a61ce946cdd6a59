//! Ctrl-C during `doppel train`: the first asks the training session to stop (it finishes the
//! step, keeps the best weights and the command writes them); a second ends the process at
//! once. The handler runs on the `ctrlc` crate's own thread.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use doppel_engine::train::SessionControl;

/// Exit status of a process ended by SIGINT, as shells report it.
const INTERRUPTED_EXIT_CODE: i32 = 130;

/// Installs the handler for this process (once; training runs once per process).
pub fn stop_on_ctrl_c(control: SessionControl) -> Result<()> {
    let asked = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if asked.swap(true, Ordering::Relaxed) {
            eprintln!("\ninterrupted again: exiting without writing the profile");
            std::process::exit(INTERRUPTED_EXIT_CODE);
        }
        eprintln!(
            "\ninterrupted: stopping after this step and writing the best weights so far (Ctrl-C again to quit now)"
        );
        control.stop();
    })
    .context("cannot install the Ctrl-C handler")
}
