//! Free space before a step that needs it (staging uncompressed dumps, writing a bundle): refused before
//! it starts, with the numbers, rather than failing hours later on a full disk.

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The space a step needs in a directory and what its file system has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Space {
    pub needed: u64,
    /// Bytes an unprivileged user may still write there (statvfs `f_bavail × f_frsize`): the blocks the
    /// file system keeps for root are not counted, though qrd often runs as root, so a check never
    /// counts on them.
    pub available: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error(
        "not enough free space in {} to {what}: it needs {}, the file system has {} free",
        dir.display(),
        human_bytes(space.needed),
        human_bytes(space.available)
    )]
    TooLittle { dir: PathBuf, what: String, space: Space },
    #[error("failed to read the free space of {}: {source}", dir.display())]
    Statvfs {
        dir: PathBuf,
        #[source]
        source: nix::Error,
    },
}

impl UserError for SpaceError {
    fn exit_status(&self) -> ExitStatus {
        // Checked before anything is written.
        ExitStatus::Refused
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl SpaceError {
    fn hint_text(&self) -> String {
        match self {
            SpaceError::TooLittle { space, .. } => format!(
                "free at least {} there, or choose a directory on a larger file system; nothing was started",
                human_bytes(space.needed - space.available)
            ),
            SpaceError::Statvfs { .. } => "check that the directory exists".into(),
        }
    }
}

/// The free space of `dir`'s file system.
pub fn free_space(dir: &Path) -> Result<u64, SpaceError> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|source| SpaceError::Statvfs { dir: dir.to_owned(), source })?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// `Ok` when `dir`'s file system has at least `needed` bytes free; otherwise [`SpaceError::TooLittle`]
/// naming `what` the space is for (`stage the uncompressed dumps`) and both numbers.
pub fn ensure_free(dir: &Path, needed: u64, what: &str) -> Result<Space, SpaceError> {
    let space = Space { needed, available: free_space(dir)? };
    if space.available < needed {
        return Err(SpaceError::TooLittle { dir: dir.to_owned(), what: what.to_owned(), space });
    }
    tracing::debug!(dir = %dir.display(), needed, available = space.available, "enough free space");
    Ok(space)
}

/// `1.5 GiB`, `512 B`: binary units, one decimal.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_a_dba_reads_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn too_little_space_is_refused_with_the_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(dir.path()).unwrap();
        assert!(free > 0);
        let ok = ensure_free(dir.path(), 1, "stage the dumps").unwrap();
        assert_eq!(ok.needed, 1);
        let err = ensure_free(dir.path(), u64::MAX, "stage the uncompressed dumps").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("to stage the uncompressed dumps: it needs 16.0 EiB, the file system has"), "{text}");
        assert!(matches!(err, SpaceError::TooLittle { space: Space { available, .. }, .. } if available > 0));
        let hint = err.hint().unwrap();
        assert!(hint.starts_with("free at least "), "{hint}");
        assert!(matches!(ensure_free(&dir.path().join("missing"), 1, "x"), Err(SpaceError::Statvfs { .. })));
    }
}
