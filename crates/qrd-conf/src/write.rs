//! Putting a changed configuration file in place without ever leaving a half-written or lost file:
//!
//! 1. the file must still hold what the edit was computed from (someone may have saved it meanwhile);
//! 2. a backup copy goes beside it first (`pg_hba.conf.qrd-20261123T101500Z.bak`), with the same owner
//!    and mode, flushed to disk;
//! 3. the new text goes to a temporary file in the same directory, gets the original owner and mode, is
//!    flushed, and is renamed over the file (atomic on POSIX file systems), then the directory is flushed.
//!
//! A symlinked file is written through its link (the link stays). [`FileEdit::diff`] is what `--dry-run`
//! prints. Every write can be undone the same atomic way: [`Applied::undo`] (an edit) and
//! [`Installed::undo`] (a file installed whole) put back the previous content, owner and mode.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{} changed on disk since qrd read it; nothing was written", path.display())]
    Changed { path: PathBuf },
    #[error("{} already exists; nothing was written", path.display())]
    Exists { path: PathBuf },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WriteError {
    fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WriteError + 'a {
        move |source| WriteError::Io { what, path: path.to_owned(), source }
    }
}

/// A file's old and new content.
#[derive(Debug, Clone)]
pub struct FileEdit {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
    /// Owner and mode to give the file; `None` keeps the file's own.
    pub perms: Option<Perms>,
}

/// A written edit: where the file and its backup are.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// The file written (a symlink's target).
    pub path: PathBuf,
    pub backup: PathBuf,
    /// The file's owner and mode before the edit, which [`Applied::undo`] puts back.
    #[serde(skip)]
    previous: Perms,
}

impl FileEdit {
    pub fn new(path: impl Into<PathBuf>, before: impl Into<String>, after: impl Into<String>) -> Self {
        Self { path: path.into(), before: before.into(), after: after.into(), perms: None }
    }

    /// The file gets this owner and mode (instead of keeping its own), e.g. to put back saved ones.
    pub fn with_perms(mut self, perms: Perms) -> Self {
        self.perms = Some(perms);
        self
    }

    /// Whether applying it changes the file (content, or the owner and mode asked for).
    pub fn is_change(&self) -> bool {
        self.before != self.after
            || self.perms.is_some_and(|p| fs::metadata(&self.path).map(|m| Perms::of(&m) != p).unwrap_or(true))
    }

    /// A unified diff (`--- a/…`, `+++ b/…`, 3 lines of context); empty when nothing changes.
    pub fn diff(&self) -> String {
        if !self.is_change() {
            return String::new();
        }
        // `a/` and `b/` prefixes as git writes them; an absolute path keeps its own slash (`a/tmp/x`).
        let name = self.path.display().to_string();
        let name = name.strip_prefix('/').unwrap_or(&name);
        similar::TextDiff::from_lines(&self.before, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
            .to_string()
    }

    /// Backs the file up and replaces it atomically (see the module documentation).
    pub fn apply(&self) -> Result<Applied, WriteError> {
        let path = fs::canonicalize(&self.path).map_err(WriteError::io("cannot resolve", &self.path))?;
        let current = fs::read(&path).map_err(WriteError::io("cannot read", &path))?;
        if current != self.before.as_bytes() {
            return Err(WriteError::Changed { path });
        }
        let meta = fs::metadata(&path).map_err(WriteError::io("cannot stat", &path))?;
        let previous = Perms::of(&meta);
        let backup = backup_copy(&path, &current, previous)?;
        replace_atomically(&path, self.after.as_bytes(), self.perms.unwrap_or(previous))?;
        tracing::debug!(file = %path.display(), backup = %backup.display(), "written");
        Ok(Applied { path, backup, previous })
    }
}

impl Applied {
    /// Puts the backup's content, owner and mode back (atomically). The backup stays.
    pub fn undo(&self) -> Result<(), WriteError> {
        let content = fs::read(&self.backup).map_err(WriteError::io("cannot read backup", &self.backup))?;
        replace_atomically(&self.path, &content, self.previous)
    }
}

/// `<file>.qrd-<UTC timestamp>.bak` beside `path` (`.1`, `.2` … appended if taken), never overwriting.
fn backup_copy(path: &Path, content: &[u8], perms: Perms) -> Result<PathBuf, WriteError> {
    let stamp = utc_stamp(SystemTime::now());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for n in 0.. {
        let suffix = if n == 0 { String::new() } else { format!(".{n}") };
        let backup = path.with_file_name(format!("{name}.qrd-{stamp}{suffix}.bak"));
        let file = OpenOptions::new().write(true).create_new(true).mode(perms.mode & 0o777).open(&backup);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(WriteError::io("cannot create backup", &backup)(e)),
        };
        file.write_all(content).map_err(WriteError::io("cannot write backup", &backup))?;
        set_perms(&file, perms, &backup)?;
        file.sync_all().map_err(WriteError::io("cannot flush backup", &backup))?;
        return Ok(backup);
    }
    unreachable!("the loop returns")
}

/// Mode and owner a written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Perms {
    /// The owner and mode of an existing file.
    pub fn of(meta: &fs::Metadata) -> Perms {
        Perms { mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid() }
    }
}

/// A file written by [`install`]: what was there before, for [`Installed::undo`].
#[derive(Debug, Clone)]
pub struct Installed {
    pub path: PathBuf,
    /// The backup of a previous file with other content.
    pub backup: Option<PathBuf>,
    previous: Option<(Vec<u8>, Perms)>,
}

/// Writes `content` to `path` with `perms`, atomically (temporary file created with the final mode, so a
/// key is never readable by others even briefly; flushed; renamed; directory flushed). A previous file
/// with other content is first copied to `<name>.qrd-<UTC time>.bak` beside it (its own mode and owner).
/// For files qrd installs whole, such as certificates and keys.
pub fn install(path: &Path, content: &[u8], perms: Perms) -> Result<Installed, WriteError> {
    // Through a symlink (a certificate linked to where renewals land): write its target, keep the link.
    let resolved = fs::canonicalize(path).ok();
    let path = resolved.as_deref().unwrap_or(path);
    let previous = match fs::read(path) {
        Ok(old) => {
            let meta = fs::metadata(path).map_err(WriteError::io("cannot stat", path))?;
            Some((old, Perms::of(&meta)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(WriteError::io("cannot read", path)(e)),
    };
    let backup = match &previous {
        Some((old, old_perms)) if old != content => Some(backup_copy(path, old, *old_perms)?),
        _ => None,
    };
    replace_file(path, content, perms)?;
    Ok(Installed { path: path.to_owned(), backup, previous })
}

impl Installed {
    /// Puts back what was there before [`install`] (or removes the file if there was none).
    pub fn undo(&self) -> Result<(), WriteError> {
        match &self.previous {
            Some((bytes, perms)) => replace_file(&self.path, bytes, *perms),
            None => fs::remove_file(&self.path).map_err(WriteError::io("cannot remove", &self.path)),
        }
    }
}

/// The atomic write of [`install`] (replacing any file at `path`), without a backup: for files qrd owns
/// (state it saves for itself).
pub fn replace_file(path: &Path, content: &[u8], perms: Perms) -> Result<(), WriteError> {
    replace_atomically(path, content, perms)
}

fn replace_atomically(path: &Path, content: &[u8], perms: Perms) -> Result<(), WriteError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut file = AtomicFile::create(path, &format!(".{name}.qrd-"), perms.mode & 0o700)?;
    file.as_file_mut().write_all(content).map_err(WriteError::io("cannot write", file.temp_path()))?;
    set_perms(file.as_file(), perms, path)?;
    file.commit()
}

/// A file written under a temporary name in its final directory and put under its final name only by
/// [`AtomicFile::commit`] (flushed, renamed, directory flushed); dropped uncommitted, the temporary file is
/// removed. Readers therefore see the previous file or the complete new one, never a part. For content
/// streamed in (a backup bundle) as well as for [`replace_file`]'s bytes.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates `<dir of path>/<tmp_prefix><random>` with `mode` from the start (a file of secrets is never
    /// readable by others, not even empty).
    pub fn create(path: &Path, tmp_prefix: &str, mode: u32) -> Result<AtomicFile, WriteError> {
        let dir = parent_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(tmp_prefix)
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(WriteError::io("cannot create a temporary file in", dir))?;
        Ok(AtomicFile { tmp, path: path.to_owned() })
    }

    pub fn as_file(&self) -> &File {
        self.tmp.as_file()
    }

    pub fn as_file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Where the content is until it is committed.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the file, renames it over whatever has the final name, flushes the directory.
    pub fn commit(self) -> Result<(), WriteError> {
        self.commit_with(false)
    }

    /// As [`AtomicFile::commit`], but a file that has the final name meanwhile is left alone:
    /// [`WriteError::Exists`], and the temporary file is removed.
    pub fn commit_new(self) -> Result<(), WriteError> {
        self.commit_with(true)
    }

    fn commit_with(self, no_clobber: bool) -> Result<(), WriteError> {
        let AtomicFile { tmp, path } = self;
        tmp.as_file().sync_all().map_err(WriteError::io("cannot flush", tmp.path()))?;
        // persist_noclobber: renameat2(RENAME_NOREPLACE), or link + unlink where a file system lacks it.
        let persisted = if no_clobber { tmp.persist_noclobber(&path) } else { tmp.persist(&path) };
        match persisted {
            Ok(_) => {}
            Err(e) if no_clobber && e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(WriteError::Exists { path });
            }
            Err(e) => return Err(WriteError::Io { what: "cannot replace", path, source: e.error }),
        }
        sync_dir(parent_dir(&path))
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("/"),
    }
}

/// Flushes a directory, so that a rename or removal in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(WriteError::io("cannot flush directory", dir))
}

fn set_perms(file: &File, perms: Perms, shown: &Path) -> Result<(), WriteError> {
    // Owner first: chown clears set-id bits, and the mode must end up exactly as asked.
    // Only root can give a file away; as the owner itself there is nothing to change.
    let (uid, gid) = (perms.uid, perms.gid);
    let ours = file.metadata().map_err(WriteError::io("cannot stat", shown))?;
    if ours.uid() != uid || ours.gid() != gid {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))
            .map_err(WriteError::io("cannot set the owner of", shown))?;
    }
    file.set_permissions(fs::Permissions::from_mode(perms.mode))
        .map_err(WriteError::io("cannot set the mode of", shown))
}

/// `20261123T101500Z` for `t` (UTC, second precision): the stamp in qrd's file names (backup copies,
/// backup bundles).
pub fn utc_stamp(t: SystemTime) -> String {
    const STAMP: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from(t).format(STAMP).expect("a UTC time formats")
}

/// Gives an existing file or directory `perms`: owner first (chown clears set-id bits), then the mode.
pub fn set_owner_and_mode(path: &Path, perms: Perms) -> Result<(), WriteError> {
    let file = File::open(path).map_err(WriteError::io("cannot open", path))?;
    set_perms(&file, perms, path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stamps_are_utc_dates() {
        assert_eq!(utc_stamp(SystemTime::UNIX_EPOCH), "19700101T000000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_428_915); // 2026-11-23T10:15:15Z
        assert_eq!(utc_stamp(t), "20261123T101515Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
    }

    #[test]
    fn apply_backs_up_replaces_keeps_mode_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg_hba.conf");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let edit = FileEdit::new(&path, "old\n", "new\n");
        assert!(edit.diff().contains("-old\n+new\n"), "{}", edit.diff());
        let applied = edit.apply().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(fs::read_to_string(&applied.backup).unwrap(), "old\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        assert_eq!(fs::metadata(&applied.backup).unwrap().mode() & 0o777, 0o640);
        let name = applied.backup.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("pg_hba.conf.qrd-") && name.ends_with("Z.bak"), "{name}");
        // A second edit within the same second gets its own backup.
        let again = FileEdit::new(&path, "new\n", "newer\n").apply().unwrap();
        assert_ne!(again.backup, applied.backup);
        again.undo().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        // No temporary files are left behind.
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn asked_perms_are_given_and_undo_puts_the_old_ones_back() {
        let dir = tempfile::tempdir().unwrap();
        let me = fs::metadata(dir.path()).unwrap();
        let path = dir.path().join("postgresql.conf");
        fs::write(&path, "a\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let asked = Perms { mode: 0o600, uid: me.uid(), gid: me.gid() };
        // Same text, other mode: still a change.
        assert!(FileEdit::new(&path, "a\n", "a\n").with_perms(asked).is_change());
        let applied = FileEdit::new(&path, "a\n", "b\n").with_perms(asked).apply().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        applied.undo().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644, "undo puts the previous mode back");
    }

    #[test]
    fn a_file_changed_since_reading_is_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postgresql.conf");
        fs::write(&path, "someone else's\n").unwrap();
        let err = FileEdit::new(&path, "what we read\n", "ours\n").apply().unwrap_err();
        assert!(matches!(err, WriteError::Changed { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "someone else's\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no backup for an edit that did not happen");
    }

    #[test]
    fn owner_is_kept_when_root_writes() {
        if !nix_is_root() {
            eprintln!("not root: giving a file away needs root; the owner is trivially kept");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg_hba.conf");
        fs::write(&path, "x\n").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let applied = FileEdit::new(&path, "x\n", "y\n").apply().unwrap();
        for p in [&path, &applied.backup] {
            let m = fs::metadata(p).unwrap();
            assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
        }
    }

    fn nix_is_root() -> bool {
        fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
    }

    #[test]
    fn symlinks_are_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.conf");
        let link = dir.path().join("link.conf");
        fs::write(&target, "a\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        FileEdit::new(&link, "a\n", "b\n").apply().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "b\n");
    }

    #[test]
    fn install_backs_up_other_content_and_undoes() {
        let dir = tempfile::tempdir().unwrap();
        let me = fs::metadata(dir.path()).unwrap();
        let perms = |mode| Perms { mode, uid: me.uid(), gid: me.gid() };
        let key = dir.path().join("server_key.pem");
        // New file: created 0600, undo removes it.
        let i = install(&key, b"k1", perms(0o600)).unwrap();
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o7777, 0o600);
        assert!(i.backup.is_none());
        i.undo().unwrap();
        assert!(!key.exists());
        // Other content: backed up with its own mode; undo puts the old bytes and mode back.
        fs::write(&key, b"old").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        let i = install(&key, b"new", perms(0o600)).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"new");
        let backup = i.backup.clone().expect("a backup");
        assert_eq!(fs::read(&backup).unwrap(), b"old");
        assert_eq!(fs::metadata(&backup).unwrap().mode() & 0o7777, 0o640);
        i.undo().unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"old");
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o7777, 0o640);
        // Same content: no backup.
        assert!(install(&key, b"old", perms(0o600)).unwrap().backup.is_none());
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o7777, 0o600, "the asked mode");
    }

    #[test]
    fn an_atomic_file_appears_only_when_committed_and_commit_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle");
        let names = || -> Vec<String> {
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        };
        let mut f = AtomicFile::create(&path, ".bundle.partial-", 0o600).unwrap();
        f.as_file_mut().write_all(b"half").unwrap();
        assert_eq!(fs::metadata(f.temp_path()).unwrap().mode() & 0o777, 0o600);
        assert!(!path.exists());
        drop(f);
        assert!(names().is_empty(), "dropped uncommitted, nothing is left: {:?}", names());

        let mut f = AtomicFile::create(&path, ".bundle.partial-", 0o600).unwrap();
        f.as_file_mut().write_all(b"whole").unwrap();
        f.commit_new().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");

        let mut f = AtomicFile::create(&path, ".bundle.partial-", 0o600).unwrap();
        f.as_file_mut().write_all(b"other").unwrap();
        assert!(matches!(f.commit_new(), Err(WriteError::Exists { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"whole", "the existing file is untouched");
        assert_eq!(names(), ["bundle"], "the refused temporary file is removed");
    }

    /// install (certificates, keys) writes through a symlink, and undo keeps the link.
    #[test]
    fn install_writes_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let me = fs::metadata(dir.path()).unwrap();
        let target = dir.path().join("managed.pem");
        let link = dir.path().join("server.pem");
        fs::write(&target, b"old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let i = install(&link, b"new", Perms { mode: 0o644, uid: me.uid(), gid: me.gid() }).unwrap();
        i.undo().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced by a file");
    }
}
