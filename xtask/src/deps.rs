//! System packages and the Python virtual environment that the demo and CI need (xtask main
//! thread). Only pure-Rust crates build `cargo xtask` itself, so it runs before any of these.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::steps::{display_command, run, workspace_root};

/// Debian packages the plugin build (nice-plug, baseview, egui's OpenGL backend, the
/// standalone's ALSA/JACK backends) and the editor smoke test under Xvfb (`xwininfo`) need.
pub const APT_PACKAGES: &[&str] = &[
    "pkg-config",
    "libasound2-dev",
    "libjack-jackd2-dev",
    "libx11-dev",
    "libx11-xcb-dev",
    "libxcursor-dev",
    "libxcb1-dev",
    "libxcb-icccm4-dev",
    "libxcb-dri2-0-dev",
    "libxrandr-dev",
    "libgl1-mesa-dev",
    "libgl1-mesa-dri",
    "xvfb",
    "xauth",
    "x11-utils",
];

/// The virtual environment of the host test, relative to the workspace root.
pub const VENV_DIR: &str = ".venv";
/// Requirements of the host test, relative to the workspace root.
pub const REQUIREMENTS: &str = "tests/host/requirements.txt";

/// Installs whichever of [`APT_PACKAGES`] are missing (plus `python3-venv` when `python3`
/// cannot make a venv). Needs root; otherwise fails with the exact command to run.
pub fn ensure_system_packages() -> Result<()> {
    if !cfg!(target_os = "linux") {
        println!("not Linux: no system packages to check");
        return Ok(());
    }
    if !command_exists("dpkg-query") || !command_exists("apt-get") {
        println!(
            "no dpkg/apt-get here: make sure the equivalents of these Debian packages are installed:\n  {}",
            APT_PACKAGES.join(" ")
        );
        return Ok(());
    }
    let mut missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if !python_can_make_venv() && !dpkg_installed("python3-venv") {
        missing.push("python3-venv");
    }
    if missing.is_empty() {
        println!("all {} system packages are installed", APT_PACKAGES.len());
        return Ok(());
    }
    let install = format!("apt-get install -y --no-install-recommends {}", missing.join(" "));
    if !is_root() {
        bail!("missing system packages: {}\nInstall them as root, then run this again:\n  sudo apt-get update && sudo {install}", missing.join(" "));
    }
    println!("installing missing system packages: {}", missing.join(" "));
    run(apt_command().args(["-q", "update"]))?;
    run(apt_command()
        .args(["-q", "install", "-y", "--no-install-recommends"])
        .args(&missing))?;
    let still_missing: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "apt-get finished but these packages are still not installed: {}",
            still_missing.join(" ")
        );
    }
    Ok(())
}

/// Creates `.venv` with `python3 -m venv` when absent and installs the host test's
/// requirements into it when they changed since the last install.
pub fn ensure_python_venv() -> Result<()> {
    let root = workspace_root();
    let venv = root.join(VENV_DIR);
    let python = venv.join("bin/python");
    if !python.is_file() {
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .current_dir(&root))?;
    }
    let requirements =
        std::fs::read_to_string(root.join(REQUIREMENTS)).with_context(|| format!("could not read {REQUIREMENTS}"))?;
    let stamp = venv.join(".doppel-requirements");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        println!("{VENV_DIR} is up to date with {REQUIREMENTS}");
        return Ok(());
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "-q",
            "-r",
        ])
        .arg(root.join(REQUIREMENTS))
        .current_dir(&root))?;
    std::fs::write(&stamp, requirements).with_context(|| format!("could not write {}", stamp.display()))?;
    Ok(())
}

/// The venv's Python interpreter.
pub fn venv_python() -> std::path::PathBuf {
    workspace_root().join(VENV_DIR).join("bin/python")
}

fn apt_command() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive").stdin(Stdio::null());
    command
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .map(|output| output.status.success() && String::from_utf8_lossy(&output.stdout).ends_with("ok installed"))
        .unwrap_or(false)
}

fn python_can_make_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

fn command_exists(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    let mut command = Command::new("id");
    command.arg("-u");
    match command.output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim() == "0",
        Err(error) => {
            eprintln!("could not run `{}`: {error}", display_command(&command));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_list_has_no_duplicates() {
        let mut sorted = APT_PACKAGES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), APT_PACKAGES.len());
    }

    #[test]
    fn an_unknown_package_is_not_installed() {
        assert!(!dpkg_installed("doppel-no-such-package-xyz"));
    }
}
