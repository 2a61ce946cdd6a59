//! [`SessionControl`]: what another thread (GUI, signal handler) uses to stop, pause, resume
//! or feed a running training session. Any thread but the audio thread; the training thread
//! reads it between steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::CaptureInput;

/// Shared control of a running session: stop, pause, resume, more data. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SessionControl {
    state: Arc<ControlState>,
}

#[derive(Debug, Default)]
struct ControlState {
    stop: AtomicBool,
    pause: AtomicBool,
    has_pending: AtomicBool,
    pending: Mutex<Vec<CaptureInput>>,
}

impl SessionControl {
    /// Ends the run at the next step; the best weights so far become the profile.
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.state.stop.load(Ordering::Relaxed)
    }

    /// Holds the run between steps (its time budget stands still).
    pub fn pause(&self) {
        self.state.pause.store(true, Ordering::Release);
    }

    /// Lets a paused run go on.
    pub fn resume(&self) {
        self.state.pause.store(false, Ordering::Release);
    }

    /// Whether the run is held.
    pub fn is_paused(&self) -> bool {
        self.state.pause.load(Ordering::Acquire)
    }

    /// Adds a capture to the running session's data (aligned on the training thread; one
    /// that does not fit the session is refused with a [`super::SessionEvent::Note`]).
    pub fn feed(&self, capture: CaptureInput) {
        self.state
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(capture);
        self.state.has_pending.store(true, Ordering::Release);
    }

    pub(super) fn take_pending(&self) -> Vec<CaptureInput> {
        if !self.state.has_pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.state.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
