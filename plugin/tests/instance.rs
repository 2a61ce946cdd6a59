//! A whole plugin instance's start-up: `DOPPEL_PROFILE` picks the starting profile and the knob
//! defaults follow it. One test only, since it sets a process-wide environment variable.

mod common;

use common::nano_profile;
use doppel::{Doppel, PROFILE_ENV_VAR};
use nice_plug::prelude::Param;

#[test]
fn doppel_profile_env_var_sets_the_starting_profile_and_knob_defaults() {
    let folder = std::env::temp_dir().join(format!("doppel-instance-test-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("start.doppel");
    let mut profile = nano_profile("lstm", "starter", 31);
    profile.meta.knobs[0].default = 2.5; // gain 0..10: normalised 0.25
    profile.save(&path).unwrap();

    std::env::set_var(PROFILE_ENV_VAR, &path);
    let plugin = Doppel::default();
    let status = plugin.hub().status();
    assert_eq!(
        status.meta.as_ref().map(|m| m.name.as_str()),
        Some("starter"),
        "{:?}",
        status.last_error
    );
    assert_eq!(status.source, path.display().to_string());
    let params = plugin.shared_params();
    assert_eq!(params.knob1.value(), 0.25);
    assert_eq!(params.knob1.default_plain_value(), 0.25);
    assert_eq!(params.knob2.value(), 0.5, "level -6 dB over -12..0 dB");
    assert_eq!(params.knob1.normalized_value_to_string(0.25, true), "2.5");
    assert_eq!(params.knob3.normalized_value_to_string(0.25, true), "unused");

    // A bad path leaves a fresh instance in pass-through with the error for the editor.
    std::env::set_var(PROFILE_ENV_VAR, folder.join("missing.doppel"));
    let plugin = Doppel::default();
    let status = plugin.hub().status();
    assert!(status.meta.is_none());
    assert!(status.last_error.unwrap().contains("missing.doppel"));
    assert_eq!(plugin.shared_params().knob1.value(), 0.5);

    std::env::remove_var(PROFILE_ENV_VAR);
    std::fs::remove_dir_all(&folder).unwrap();
}
