//! Build script: bakes an optional default profile into the plugin binary (build time only).
//!
//! When `DOPPEL_DEFAULT_PROFILE` names a `.doppel` file, it is copied to
//! `$OUT_DIR/default_profile.doppel`, which the crate embeds with `include_bytes!` and loads
//! when a new instance is created. Without the variable the embedded file is empty and a new
//! instance starts without a model (pass-through).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DOPPEL_DEFAULT_PROFILE");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out_dir.join("default_profile.doppel");
    match std::env::var_os("DOPPEL_DEFAULT_PROFILE").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
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
