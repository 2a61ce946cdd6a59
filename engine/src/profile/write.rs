//! Writing profile files so that a crash, Ctrl-C or full disk never leaves a half-written one,
//! and checking a destination before minutes of training (CLI and trainer threads).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

/// Writes `bytes` to `path` atomically: into a temporary file beside it, synced, then renamed
/// over it. On failure the temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_path(path);
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Where [`super::Profile::save`] writes before renaming: a hidden file in the same folder (a
/// rename is atomic only within one file system).
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or("profile".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Checks, before any work is done, that a profile can be written to `path`: not a folder,
/// in a folder that exists and accepts a new file.
pub fn ensure_writable(path: &Path) -> Result<()> {
    ensure!(!path.is_dir(), "{} is a folder, not a profile file", path.display());
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    ensure!(
        folder.is_dir(),
        "cannot write {}: folder {} does not exist",
        path.display(),
        folder.display()
    );
    let probe = temporary_path(path);
    std::fs::write(&probe, b"").with_context(|| format!("cannot write to {}", folder.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("doppel-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.doppel");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        ensure_writable(&path).unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(ensure_writable(&dir).is_err(), "a folder is not a profile file");
        assert!(ensure_writable(&dir.join("missing/p.doppel")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
