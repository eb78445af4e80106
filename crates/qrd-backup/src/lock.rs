//! The lock of a backup directory: `DIR/.qrd-backup.lock`, held with flock(2) for as long as a
//! [`DirLock`] lives, so two backups (or a backup and a prune) never work in one directory at once. The
//! kernel drops the lock when the holder exits, however it exits, so a crashed run never leaves a stale
//! lock behind; the file itself stays (removing it would let a third process lock a new file while a
//! second still holds the old one).
//!
//! The holder writes its pid into the file, for the error a second run gets. That write is in place,
//! unlike qrd's other files: the lock lives on the file's inode, and an atomic replace would give the
//! path a new, unlocked inode. A reader racing the write sees no pid, which the error allows.

use qrd_exit::{ExitStatus, UserError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name in a backup directory.
pub const LOCK_FILE: &str = ".qrd-backup.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another qrd backup is working in {}{}",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { dir: PathBuf, pid: Option<u32> },
    #[error("failed to {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl UserError for LockError {
    fn exit_status(&self) -> ExitStatus {
        // Another run holds the directory, or it cannot be locked: nothing was started.
        ExitStatus::Refused
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl LockError {
    fn hint_text(&self) -> String {
        match self {
            LockError::Held { pid: Some(pid), .. } => {
                format!("wait for it to finish (`ps -p {pid}` shows it), or use another directory")
            }
            LockError::Held { pid: None, .. } => "wait for it to finish, or use another directory".into(),
            LockError::Io { .. } => "check that the backup directory exists and is writable".into(),
        }
    }
}

/// The held lock of a backup directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` without waiting: [`LockError::Held`], with the holder's pid when it is
    /// known, if another process has it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |what: &'static str| {
            let path = path.clone();
            move |source| LockError::Io { what, path, source }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err("open the lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held { dir: dir.to_owned(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock")(e)),
        }
        file.set_len(0).map_err(io_err("write"))?;
        file.rewind().map_err(io_err("write"))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err("write"))?;
        tracing::debug!(lock = %path.display(), "backup directory locked");
        Ok(DirLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Emptied first, so a pid is never shown for a lock nobody holds; then unlocked (closing would too).
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_at_once_naming_the_holder_and_works_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description: a second open in this process conflicts like
        // another process would.
        match DirLock::acquire(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&format!("(pid {})", std::process::id())), "{err}");
        let hint = err.hint().unwrap();
        assert!(hint.contains("ps -p"), "{hint}");
        drop(held);
        let again = DirLock::acquire(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(again.path()).unwrap().trim(), std::process::id().to_string());
    }

    #[test]
    fn another_process_holding_the_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, "").unwrap();
        // flock(1) (util-linux, in every Debian) holds the lock in another process: one process, which
        // the kill below ends (--no-fork and exec, so no child keeps the locked descriptor).
        let mut child = std::process::Command::new("flock")
            .args(["--exclusive", "--no-fork"])
            .arg(&path)
            .args(["sh", "-c", "echo 4242 > \"$0\"; exec sleep 30"])
            .arg(&path)
            .spawn()
            .expect("flock(1) from util-linux");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let seen = loop {
            match DirLock::acquire(dir.path()) {
                Err(LockError::Held { pid: Some(pid), .. }) => break Some(pid),
                _ if std::time::Instant::now() > deadline => break None,
                Ok(lock) => drop(lock),
                Err(_) => {}
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(seen, Some(4242));
        DirLock::acquire(dir.path()).expect("the lock is free once the holder has exited");
    }
}
