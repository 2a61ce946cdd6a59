//! The off-audio side of model loading: validates a profile, builds its kernels, posts them to
//! the audio thread, retires replaced models, and keeps what the GUI and the host state need
//! (knob labels, the loaded profile's header, the profile for the host state, the last error).
//! A trained checkpoint is posted without encoding it: the state text is made when the host
//! saves ([`ProfileSlot`]), not on every swap.
//!
//! Threads: GUI, host main thread (state save/restore, activation) and the trainer thread.
//! Never the audio thread (it only sees the [`Mailbox`] and its [`ModelPlayer`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use doppel_engine::model::MAX_KNOBS;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use doppel_engine::{Profile, ProfileMeta};
use nice_plug::params::persist::PersistentField;

use crate::params::{DoppelParams, KnobLabels};
use crate::state;
use crate::swap::{KnobsNow, LoadedModel, Mailbox, ModelPlayer};

/// The persisted `profile` field: its text, or the bytes of a profile not encoded yet.
#[derive(Default)]
struct EncodedProfile {
    text: String,
    /// `.doppel` bytes posted since `text` was made (a trained checkpoint).
    pending: Option<Vec<u8>>,
}

impl EncodedProfile {
    /// The state text, encoding pending bytes first.
    fn text(&mut self) -> &String {
        if let Some(bytes) = self.pending.take() {
            self.text = state::encode_profile(&bytes);
        }
        &self.text
    }
}

/// What a GUI shows about the current profile.
#[derive(Clone, Debug, Default)]
pub struct HubStatus {
    /// Header of the loaded profile, `None` when nothing is loaded.
    pub meta: Option<Arc<ProfileMeta>>,
    /// Where the loaded profile came from (a path, "plugin state", "built-in default"...).
    pub source: String,
    /// The last load error, cleared by the next successful load.
    pub last_error: Option<String>,
    /// Size of the loaded profile's file, in bytes (0 when nothing is loaded).
    pub file_bytes: usize,
}

/// Off-audio owner of model loading. Shared as `Arc<ModelHub>` by the plugin, its parameters
/// (knob labels, persisted profile) and the editor.
pub struct ModelHub {
    mailbox: Arc<Mailbox<LoadedModel>>,
    retired: Mutex<rtrb::Consumer<Box<LoadedModel>>>,
    labels: Arc<ArcSwap<KnobLabels>>,
    /// The persisted `profile` field (see [`crate::state`]).
    encoded: Mutex<EncodedProfile>,
    /// The loaded profile (what training fine-tunes and exports).
    profile: Mutex<Option<Arc<Profile>>>,
    /// The knobs playing now, published by the audio thread.
    knobs_now: Arc<KnobsNow>,
    status: Mutex<HubStatus>,
    /// Set once a host state carrying a profile was restored.
    restored_from_state: AtomicBool,
    /// Counts successful loads (the GUI uses it to notice changes).
    generation: AtomicU64,
}

impl ModelHub {
    /// A hub with nothing loaded, plus the audio thread's player wired to it.
    pub fn new(labels: Arc<ArcSwap<KnobLabels>>) -> (Arc<Self>, ModelPlayer) {
        let mailbox = Arc::new(Mailbox::default());
        let knobs_now: Arc<KnobsNow> = Arc::default();
        let (player, retired) = ModelPlayer::new(mailbox.clone(), knobs_now.clone());
        let hub = ModelHub {
            mailbox,
            retired: Mutex::new(retired),
            labels,
            encoded: Mutex::new(EncodedProfile::default()),
            profile: Mutex::new(None),
            knobs_now,
            status: Mutex::new(HubStatus::default()),
            restored_from_state: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        };
        (Arc::new(hub), player)
    }

    /// Loads a `.doppel` file. On error the previous model keeps playing and the error is kept
    /// for the GUI.
    pub fn load_path(&self, path: &Path) -> Result<()> {
        let result = std::fs::read(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .and_then(|bytes| {
                let source = path.display().to_string();
                self.try_load_bytes(&bytes, &source, None)
                    .with_context(|| format!("bad profile {source}"))
            });
        self.record(result)
    }

    /// Loads a model file of any supported kind: a `.doppel` profile, or a NAM `.nam` /
    /// AIDA-X `.json` / `.aidax` model imported on the fly. Errors as in `load_path`. Off the
    /// GUI thread (imports parse and convert whole files).
    pub fn load_any_path(&self, path: &Path) -> Result<()> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match extension.as_str() {
            "nam" | "json" | "aidax" => {
                let imported = doppel_engine::interop::import_file(path, &Default::default());
                match imported {
                    Ok(profile) => self.load_profile(&profile, &format!("{} (imported)", path.display())),
                    Err(err) => self.record(Err(err)),
                }
            }
            _ => self.load_path(path),
        }
    }

    /// Loads a profile from its file bytes, naming `source` in the GUI. Errors as in `load_path`.
    pub fn load_bytes(&self, file_bytes: &[u8], source: &str) -> Result<()> {
        let result = self.try_load_bytes(file_bytes, source, None);
        self.record(result)
    }

    /// Loads an in-memory profile (freshly trained weights): built warm off the audio
    /// thread and crossfaded in; its state text is encoded only when the host saves.
    /// Errors as in `load_path`.
    pub fn load_profile(&self, profile: &Profile, source: &str) -> Result<()> {
        let result = profile.to_bytes().and_then(|bytes| {
            let model = LoadedModel::build(profile, &self.build_knobs(profile))?;
            let file_bytes = bytes.len();
            self.commit(
                model,
                Arc::new(profile.clone()),
                file_bytes,
                source,
                EncodedProfile {
                    text: String::new(),
                    pending: Some(bytes),
                },
            );
            Ok(())
        });
        self.record(result)
    }

    /// The knob values a model built now should be warm for: what the audio thread last
    /// published, or before any audio ran, `profile`'s defaults (what a new instance's knob
    /// parameters start at).
    pub fn build_knobs(&self, profile: &Profile) -> [f32; MAX_KNOBS] {
        self.knobs_now
            .get()
            .unwrap_or_else(|| DoppelParams::knob_defaults(Some(&profile.meta)))
    }

    /// The loaded profile, `None` in pass-through.
    pub fn profile(&self) -> Option<Arc<Profile>> {
        self.profile.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Restores the persisted `profile` field: `""` unloads the model, anything else is decoded
    /// and loaded like a file. Errors as in `load_path`.
    pub fn restore_state(&self, encoded: String) -> Result<()> {
        let result = self.try_restore_state(encoded);
        self.record(result.context("cannot restore the saved profile"))
    }

    fn try_restore_state(&self, encoded: String) -> Result<()> {
        if encoded.trim().is_empty() {
            self.commit_passthrough(LoadedModel::passthrough());
            return Ok(());
        }
        let bytes = state::decode_profile(&encoded)?;
        self.try_load_bytes(&bytes, "plugin state", Some(encoded))?;
        self.restored_from_state.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether a host state carrying a profile has been restored into this instance.
    pub fn restored_from_state(&self) -> bool {
        self.restored_from_state.load(Ordering::Acquire)
    }

    /// Whether a profile is loaded (posted to the audio thread).
    pub fn has_profile(&self) -> bool {
        self.lock_status().meta.is_some()
    }

    /// A snapshot of what the GUI shows.
    pub fn status(&self) -> HubStatus {
        self.lock_status().clone()
    }

    /// Counts successful loads and unloads, starting at 0.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The persisted `profile` field's current value (encoding a trained profile now if one
    /// was posted since).
    pub fn encoded_profile(&self) -> String {
        self.encoded.lock().unwrap_or_else(|e| e.into_inner()).text().clone()
    }

    /// Drops models the audio thread has retired. Called before each post, by the editor every
    /// frame and on deactivation.
    pub fn collect_retired(&self) -> usize {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let mut count = 0;
        while let Ok(model) = retired.pop() {
            drop(model);
            count += 1;
        }
        count
    }

    fn try_load_bytes(&self, file_bytes: &[u8], source: &str, encoded: Option<String>) -> Result<()> {
        let profile = Profile::from_bytes(file_bytes)?;
        let model =
            LoadedModel::build(&profile, &self.build_knobs(&profile)).context("cannot build the model's kernels")?;
        let text = encoded.unwrap_or_else(|| state::encode_profile(file_bytes));
        let encoded = EncodedProfile { text, pending: None };
        self.commit(model, Arc::new(profile), file_bytes.len(), source, encoded);
        Ok(())
    }

    fn commit_passthrough(&self, model: LoadedModel) {
        self.commit_any(model, None, 0, "", EncodedProfile::default());
    }

    fn commit(
        &self,
        model: LoadedModel,
        profile: Arc<Profile>,
        file_bytes: usize,
        source: &str,
        encoded: EncodedProfile,
    ) {
        self.commit_any(model, Some(profile), file_bytes, source, encoded);
    }

    fn commit_any(
        &self,
        model: LoadedModel,
        profile: Option<Arc<Profile>>,
        file_bytes: usize,
        source: &str,
        encoded: EncodedProfile,
    ) {
        self.collect_retired();
        let meta = model.meta.clone();
        self.labels.store(Arc::new(KnobLabels::from_meta(meta.as_deref())));
        // A model posted earlier but never taken (audio not running) is dropped here.
        drop(self.mailbox.post(Box::new(model)));
        *self.encoded.lock().unwrap_or_else(|e| e.into_inner()) = encoded;
        *self.profile.lock().unwrap_or_else(|e| e.into_inner()) = profile;
        {
            let mut status = self.lock_status();
            status.meta = meta;
            status.source = source.to_string();
            status.file_bytes = file_bytes;
            status.last_error = None;
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn record(&self, result: Result<()>) -> Result<()> {
        if let Err(err) = &result {
            self.lock_status().last_error = Some(format!("{err:#}"));
        }
        result
    }

    fn lock_status(&self) -> MutexGuard<'_, HubStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ModelHub {
    fn drop(&mut self) {
        self.collect_retired();
    }
}

/// The `#[persist = "profile"]` field: reads and writes the hub's encoded profile, so restoring
/// a host state loads (and plays) the saved model. Host main thread or GUI thread.
pub struct ProfileSlot(pub Arc<ModelHub>);

impl<'a> PersistentField<'a, String> for ProfileSlot {
    fn set(&self, new_value: String) {
        // The hub keeps the error for the editor; a bad state leaves the current model playing.
        let _ = self.0.restore_state(new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&String) -> R,
    {
        f(self.0.encoded.lock().unwrap_or_else(|e| e.into_inner()).text())
    }
}
