//! Named, timed steps and the command runners the demo and the CI run share (xtask main thread).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The workspace root (the directory holding the workspace `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Fails on any argument: for commands that take none.
pub fn ensure_no_extra_args(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("unexpected argument '{arg}' (see `cargo xtask help`)");
    }
    Ok(())
}

/// A `cargo` command: the cargo that started this xtask when known, else `cargo` on PATH.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// How a command reads in a log line: program and arguments, quoted where needed.
pub fn display_command(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            let _ = write!(text, " '{}'", arg.replace('\'', r"'\''"));
        } else {
            let _ = write!(text, " {arg}");
        }
    }
    text
}

/// Runs `command` with inherited output; fails unless it exits with status 0.
pub fn run(command: &mut Command) -> Result<()> {
    println!("$ {}", display_command(command));
    let status = command
        .status()
        .with_context(|| format!("could not start `{}`", display_command(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display_command(command));
    }
    Ok(())
}

/// Runs `command` with stdout captured (stderr inherited) and parses its stdout as one JSON
/// object (the last line that starts with `{` when there are several lines).
pub fn run_json(command: &mut Command) -> Result<serde_json::Value> {
    println!("$ {}", display_command(command));
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{}`", display_command(command)))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        print!("{stdout}");
        bail!("`{}` failed ({})", display_command(command), output.status);
    }
    let text = stdout.trim();
    let value = serde_json::from_str(text).or_else(|_| {
        let line = text
            .lines()
            .rev()
            .find(|line| line.trim_start().starts_with('{'))
            .unwrap_or(text);
        serde_json::from_str(line)
    });
    value.with_context(|| format!("`{}` printed no JSON object:\n{stdout}", display_command(command)))
}

/// The outcome of one step.
struct StepRecord {
    name: String,
    wall: Duration,
    outcome: Outcome,
}

enum Outcome {
    Ok,
    Skipped,
    Failed,
}

/// Runs named steps in order, timing each, and stops at the first failure with a summary
/// that says which step failed.
pub struct Steps {
    title: &'static str,
    started: Instant,
    records: Vec<StepRecord>,
}

impl Steps {
    /// An empty list of steps for the command called `title` (e.g. "cargo xtask test").
    pub fn new(title: &'static str) -> Self {
        Self {
            title,
            started: Instant::now(),
            records: Vec::new(),
        }
    }

    /// Runs `step` under `name`; on failure prints the summary and returns the error.
    pub fn run<T>(&mut self, name: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("\n==> [{}] {name}", self.title);
        let started = Instant::now();
        let result = step();
        let wall = started.elapsed();
        let outcome = if result.is_ok() { Outcome::Ok } else { Outcome::Failed };
        self.records.push(StepRecord {
            name: name.to_owned(),
            wall,
            outcome,
        });
        match result {
            Ok(value) => {
                println!("<== [{}] {name}: ok in {}", self.title, format_duration(wall));
                Ok(value)
            }
            Err(error) => {
                println!(
                    "<== [{}] {name}: FAILED after {}: {error:#}",
                    self.title,
                    format_duration(wall)
                );
                self.print_summary();
                Err(error.context(format!("{}: step '{name}' failed", self.title)))
            }
        }
    }

    /// Records `name` as skipped.
    pub fn skip(&mut self, name: &str) {
        println!("\n==> [{}] {name}: skipped", self.title);
        self.records.push(StepRecord {
            name: name.to_owned(),
            wall: Duration::ZERO,
            outcome: Outcome::Skipped,
        });
    }

    /// Wall time since the first step started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Prints every step so far with its outcome and wall time.
    pub fn print_summary(&self) {
        println!("\n{} summary:", self.title);
        for record in &self.records {
            let outcome = match record.outcome {
                Outcome::Ok => "ok",
                Outcome::Skipped => "skipped",
                Outcome::Failed => "FAILED",
            };
            println!("  {:<8} {:>9}  {}", outcome, format_duration(record.wall), record.name);
        }
        let failed = self
            .records
            .iter()
            .filter(|record| matches!(record.outcome, Outcome::Failed))
            .count();
        let verdict = if failed == 0 { "all steps ok" } else { "FAILED" };
        println!("  {verdict}, total wall time {}", format_duration(self.elapsed()));
    }
}

/// `1m 02.3s` / `4.1s` style.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 60.0 {
        format!("{}m {:04.1}s", (seconds / 60.0).floor() as u64, seconds % 60.0)
    } else {
        format!("{seconds:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_minutes_and_seconds() {
        assert_eq!(format_duration(Duration::from_millis(4_120)), "4.1s");
        assert_eq!(format_duration(Duration::from_millis(62_300)), "1m 02.3s");
    }

    #[test]
    fn commands_are_quoted_only_where_needed() {
        let mut command = Command::new("doppel");
        command.args(["train", "--name", "Tube amp (gain 8)", "--out", "a.doppel"]);
        assert_eq!(
            display_command(&command),
            "doppel train --name 'Tube amp (gain 8)' --out a.doppel"
        );
    }

    #[test]
    fn the_workspace_root_holds_the_bundler_config() {
        assert!(workspace_root().join("bundler.toml").is_file());
    }
}
