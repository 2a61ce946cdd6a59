//! Build script: bakes an optional default profile into the plugin binary (build time only).
//!
//! The profile a new instance plays is copied to `$OUT_DIR/default_profile.doppel`, which the
//! crate embeds with `include_bytes!`: the file `DOPPEL_DEFAULT_PROFILE` names, or without the
//! variable the shipped default ([`SHIPPED_DEFAULT`], so a plain bundle plays a model, not
//! pass-through). `DOPPEL_DEFAULT_PROFILE=none` embeds nothing (a new instance passes audio
//! through until a profile is loaded).

use std::path::PathBuf;

/// The shipped profile a plain build plays, relative to this crate.
const SHIPPED_DEFAULT: &str = "../profiles/tube_amp_gain8_tone6_wavenet_feather.doppel";

fn main() {
    println!("cargo:rerun-if-env-changed=DOPPEL_DEFAULT_PROFILE");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out_dir.join("default_profile.doppel");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let chosen = match std::env::var_os("DOPPEL_DEFAULT_PROFILE").filter(|p| !p.is_empty()) {
        Some(path) if path == "none" => None,
        Some(path) => Some(PathBuf::from(path)),
        None => Some(manifest_dir.join(SHIPPED_DEFAULT)),
    };
    match chosen {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            if let Err(err) = std::fs::copy(&path, &target) {
                panic!(
                    "DOPPEL_DEFAULT_PROFILE={}: cannot copy the profile: {err}",
                    path.display()
                );
            }
        }
        None => std::fs::write(&target, []).expect("cannot write the empty default profile"),
    }
}
