//! `cargo xtask test`: everything CI runs, in order, failing fast (xtask main thread).

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::bundle::bundle_plugin;
use crate::deps::{ensure_python_venv, ensure_system_packages, venv_python};
use crate::steps::{cargo, display_command, run as run_command, workspace_root, Steps};

/// Step names in the order they run.
const STEP_NAMES: [&str; 9] = [
    "deps",
    "venv",
    "fmt",
    "clippy",
    "build",
    "test",
    "bundle",
    "standalone",
    "host",
];
/// How long the standalone must stay up under Xvfb before its editor window is checked, in seconds.
const STANDALONE_SECONDS: &str = "8";

/// Which steps run: all by default, narrowed by `--only a,b` and `--skip c`.
pub struct StepFilter {
    only: Option<Vec<String>>,
    skip: Vec<String>,
}

impl StepFilter {
    /// Parses `--only STEPS` / `--skip STEPS` (comma-separated step names).
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut filter = Self {
            only: None,
            skip: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, value) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = || {
                value
                    .clone()
                    .or_else(|| args.next().cloned())
                    .context("missing list of steps")
            };
            match flag {
                "--only" => filter.only = Some(step_list(&value()?)?),
                "--skip" => filter.skip.extend(step_list(&value()?)?),
                _ => bail!("unknown argument '{arg}' (see `cargo xtask help`)"),
            }
        }
        Ok(filter)
    }

    fn wants(&self, step: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|name| name == step))
            && !self.skip.iter().any(|name| name == step)
    }
}

fn step_list(text: &str) -> Result<Vec<String>> {
    let names: Vec<String> = text
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    if let Some(unknown) = names.iter().find(|name| !STEP_NAMES.contains(&name.as_str())) {
        bail!("unknown step '{unknown}'; steps are {}", STEP_NAMES.join(", "));
    }
    Ok(names)
}

/// Runs the selected steps; the first failure stops the run.
pub fn run(filter: StepFilter) -> Result<()> {
    let root = workspace_root();
    let mut steps = Steps::new("cargo xtask test");
    let step = |steps: &mut Steps, key: &str, name: &str, body: &dyn Fn() -> Result<()>| -> Result<()> {
        if filter.wants(key) {
            steps.run(&format!("{key}: {name}"), body)
        } else {
            steps.skip(&format!("{key}: {name}"));
            Ok(())
        }
    };

    step(&mut steps, "deps", "system packages", &ensure_system_packages)?;
    step(&mut steps, "venv", "Python venv for the host test", &ensure_python_venv)?;
    step(&mut steps, "fmt", "cargo fmt --check", &|| {
        run_command(cargo().args(["fmt", "--all", "--check", "--", "--color", "never"]))
    })?;
    step(&mut steps, "clippy", "cargo clippy -D warnings", &|| {
        run_command(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    step(&mut steps, "build", "build the doppel CLI", &|| {
        run_command(cargo().args(["build", "-p", "doppel-cli"]))
    })?;
    step(&mut steps, "test", "cargo test --workspace", &|| {
        run_command(cargo().args(["test", "--workspace"]))
    })?;
    step(
        &mut steps,
        "bundle",
        "bundle the plugin (debug: allocation checks abort)",
        &|| {
            // The shipped default is baked in (as in a plain bundle): the host tests load their
            // own profiles through DOPPEL_PROFILE or the state, which replace it.
            std::env::remove_var("DOPPEL_DEFAULT_PROFILE");
            std::env::remove_var("DOPPEL_PROFILE");
            bundle_plugin(false)
        },
    )?;
    step(
        &mut steps,
        "standalone",
        "standalone with its editor under Xvfb",
        &standalone_smoke_test,
    )?;
    step(
        &mut steps,
        "host",
        "host tests of the VST3 (pedalboard, DawDreamer)",
        &|| {
            run_command(
                Command::new(venv_python())
                    .args(["-m", "pytest", "tests/host", "-v", "-p", "no:cacheprovider"])
                    .env("DOPPEL_BIN", root.join("target/debug/doppel"))
                    .env("DOPPEL_VST3", root.join("target/bundled/Doppel.vst3"))
                    .env_remove("DOPPEL_PROFILE")
                    .current_dir(&root),
            )
        },
    )?;
    steps.print_summary();
    Ok(())
}

/// Runs inside Xvfb: starts the standalone (`$1`) on the dummy audio backend, and after `$2`
/// seconds requires it to be alive with a top-level window called "Doppel" (its editor), then
/// stops it with SIGTERM.
const STANDALONE_SCRIPT: &str = r#"
set -u
"$1" --backend dummy &
pid=$!
sleep "$2"
if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    echo "doppel-smoke: the standalone exited early with status $?"
    exit 10
fi
window=$(xwininfo -root -tree | grep '"Doppel"' | head -n 1)
if [ -z "$window" ]; then
    echo "doppel-smoke: no window called Doppel; windows:"
    xwininfo -root -tree
    kill -KILL "$pid"
    exit 11
fi
echo "doppel-smoke: editor window:$window"
kill -TERM "$pid"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$pid" 2>/dev/null || exit 0
    sleep 0.5
done
echo "doppel-smoke: the standalone ignored SIGTERM"
kill -KILL "$pid"
exit 12
"#;

/// Builds the standalone and runs it with the dummy audio backend under Xvfb: after
/// [`STANDALONE_SECONDS`] it must still be running with its editor window open, and no thread
/// may have panicked.
fn standalone_smoke_test() -> Result<()> {
    run_command(cargo().args(["build", "-p", "doppel", "--features", "standalone"]))?;
    let root = workspace_root();
    let mut command = Command::new("xvfb-run");
    command
        .args([
            "-a",
            "-s",
            "-screen 0 1280x1024x24",
            "bash",
            "-c",
            STANDALONE_SCRIPT,
            "doppel-smoke",
        ])
        .arg(root.join("target/debug/doppel-standalone"))
        .arg(STANDALONE_SECONDS)
        .env_remove("DOPPEL_PROFILE")
        .stdin(Stdio::null())
        .current_dir(&root);
    println!("$ xvfb-run ... doppel-standalone --backend dummy (editor check after {STANDALONE_SECONDS} s)");
    let output = command
        .output()
        .with_context(|| format!("could not start `{}`", display_command(&command)))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for line in log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev() {
        println!("  | {line}");
    }
    if !output.status.success() {
        bail!("the standalone smoke test failed ({})", output.status);
    }
    if log.contains("panicked") {
        bail!("the standalone stayed up but a thread panicked");
    }
    println!("the standalone ran for {STANDALONE_SECONDS} s with its editor open and stopped on SIGTERM");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn filters_pick_steps() {
        let all = StepFilter::parse(&[]).unwrap();
        assert!(STEP_NAMES.iter().all(|step| all.wants(step)));
        let only = StepFilter::parse(&args("--only host,bundle --skip bundle")).unwrap();
        assert_eq!(
            STEP_NAMES.iter().filter(|step| only.wants(step)).collect::<Vec<_>>(),
            [&"host"]
        );
        let skip = StepFilter::parse(&args("--skip=fmt,clippy")).unwrap();
        assert!(!skip.wants("fmt") && !skip.wants("clippy") && skip.wants("test"));
    }

    #[test]
    fn unknown_steps_and_flags_are_errors() {
        assert!(StepFilter::parse(&args("--only lint")).is_err());
        assert!(StepFilter::parse(&args("--fast")).is_err());
        assert!(StepFilter::parse(&args("--only")).is_err());
    }
}
