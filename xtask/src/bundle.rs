//! Plugin bundling through nice-plug's bundler (xtask main thread).

use std::path::Path;

use anyhow::{Context, Result};

use crate::steps::workspace_root;

/// Runs nice-plug-xtask with `args` (e.g. `["bundle", "doppel", "--release"]`) in this
/// process, then removes the stray standalone copy it makes of the CLI.
///
/// nice-plug's bundler treats `target/<profile>/<package>` as the package's standalone
/// binary. For the package `doppel` that path is the `doppel` CLI (crate doppel-cli), not
/// the plugin, so it would be copied to `target/bundled/Doppel`; the plugin's real
/// standalone binary is `doppel-standalone`, which the bundler never picks up.
pub fn passthrough(args: Vec<String>) -> Result<()> {
    nice_plug_xtask::main_with_args("cargo xtask", args.clone())?;
    if args.first().map(String::as_str) == Some("bundle") && args.iter().any(|arg| arg == "doppel") {
        remove_stray_cli_copy(&workspace_root().join("target/bundled/Doppel"))?;
    }
    Ok(())
}

/// Bundles the plugin crate `doppel` (`release` picks the profile) into `target/bundled`.
pub fn bundle_plugin(release: bool) -> Result<()> {
    let mut args = vec!["bundle".to_owned(), "doppel".to_owned()];
    if release {
        args.push("--release".to_owned());
    }
    passthrough(args)
}

fn remove_stray_cli_copy(path: &Path) -> Result<()> {
    if path.is_file() {
        std::fs::remove_file(path).with_context(|| format!("could not remove {}", path.display()))?;
    }
    Ok(())
}
