//! A saved set of files: exact copies with their owner, mode and SHA-256, and a manifest, in a directory of
//! their own, so that the files can be put back byte for byte later and a damaged or meanwhile-edited file
//! is noticed. `qrd ssl disable --temporary` keeps the configuration it will restore in one.
//!
//! A set appears complete or not at all: it is built in a temporary directory beside its final place and
//! renamed there only once the manifest is written. A directory without a manifest therefore means
//! someone else's files, not a half-saved set.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use qrd_conf::write::{self, Perms};

use crate::FileKind;
use crate::checksum::sha256;
use crate::local::Owner;

const MANIFEST: &str = "manifest.json";
/// Format of the manifest.
const VERSION: u32 = 1;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    version: u32,
    created_utc: String,
    port: u16,
    files: Vec<SavedFile>,
}

/// One saved file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedFile {
    pub kind: FileKind,
    pub path: PathBuf,
    /// The copy's name inside the set's directory.
    pub saved_as: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub sha256: String,
    /// What was written to the file right after saving it: a file that holds neither this nor the saved
    /// content was edited by someone else meanwhile.
    pub written_sha256: Option<String>,
}

impl SavedFile {
    pub fn perms(&self) -> Perms {
        Perms { mode: self.mode, uid: self.uid, gid: self.gid }
    }
}

/// A file to save, and what will be written to it next (if anything).
#[derive(Debug, Clone)]
pub struct ToSave {
    pub path: PathBuf,
    pub kind: FileKind,
    pub written: Option<Vec<u8>>,
}

/// A saved file compared with the file as it is now.
#[derive(Debug, Clone)]
pub struct SavedCheck {
    pub file: SavedFile,
    pub saved: Vec<u8>,
    pub current: Vec<u8>,
    pub current_perms: Perms,
}

impl SavedCheck {
    /// The file holds the saved bytes, owner and mode: nothing to put back.
    pub fn is_same(&self) -> bool {
        self.current == self.saved && self.current_perms == self.file.perms()
    }

    /// The file holds neither the saved content nor what was written after saving.
    pub fn edited_since(&self) -> bool {
        self.current != self.saved && self.file.written_sha256.as_deref() != Some(sha256(&self.current).as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{} already holds a saved set", dir.display())]
    Exists { dir: PathBuf },
    #[error("{} exists but has no readable {MANIFEST}: {reason}", dir.display())]
    NoManifest { dir: PathBuf, reason: String },
    #[error("the saved copy of {} is damaged (its checksum differs from the manifest's)", path.display())]
    Damaged { path: PathBuf, copy: PathBuf },
    #[error("failed to {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Write(#[from] write::WriteError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SavedError + 'a {
    move |source| SavedError::Io { what, path: path.to_owned(), source }
}

/// A saved set on disk.
#[derive(Debug)]
pub struct SavedSet {
    dir: PathBuf,
    manifest: Manifest,
}

impl SavedSet {
    /// Saves `files` (exact bytes, owner, mode, SHA-256) in `dir`, which must not exist; the directory and
    /// copies belong to `owner`, modes 0700 and 0600.
    pub fn create(dir: &Path, owner: Owner, port: u16, files: &[ToSave]) -> Result<SavedSet, SavedError> {
        if dir.exists() {
            return Err(SavedError::Exists { dir: dir.to_path_buf() });
        }
        let parent = dir.parent().unwrap_or(Path::new("/"));
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempdir_in(parent)
            .map_err(io("create a directory in", parent))?;
        write::set_owner_and_mode(tmp.path(), owner.perms(0o700))?;
        let mut manifest =
            Manifest { version: VERSION, created_utc: qrd_cert::format_utc(qrd_cert::now()), port, files: Vec::new() };
        for (i, f) in files.iter().enumerate() {
            let bytes = fs::read(&f.path).map_err(io("read", &f.path))?;
            let meta = fs::metadata(&f.path).map_err(io("stat", &f.path))?;
            let saved_as = format!("{}-{}", i + 1, f.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
            write::replace_file(&tmp.path().join(&saved_as), &bytes, owner.perms(0o600))?;
            manifest.files.push(SavedFile {
                kind: f.kind,
                path: f.path.clone(),
                saved_as,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                sha256: sha256(&bytes),
                written_sha256: Some(sha256(f.written.as_deref().unwrap_or(&bytes))),
            });
        }
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        write::replace_file(&tmp.path().join(MANIFEST), &json, owner.perms(0o600))?;
        // Complete: now it may appear under its name.
        let tmp = tmp.keep();
        if let Err(e) = fs::rename(&tmp, dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(SavedError::Io { what: "rename the saved set to", path: dir.to_path_buf(), source: e });
        }
        fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io("flush", parent))?;
        Ok(SavedSet { dir: dir.to_path_buf(), manifest })
    }

    /// The set in `dir`: `None` when there is none.
    pub fn open(dir: &Path) -> Result<Option<SavedSet>, SavedError> {
        let path = dir.join(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => return Ok(None),
            Err(e) => return Err(SavedError::NoManifest { dir: dir.to_path_buf(), reason: e.to_string() }),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| SavedError::NoManifest { dir: dir.to_path_buf(), reason: e.to_string() })?;
        Ok(Some(SavedSet { dir: dir.to_path_buf(), manifest }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn files(&self) -> &[SavedFile] {
        &self.manifest.files
    }

    /// Every saved copy checked against the manifest, and compared with the file as it is now.
    pub fn check(&self) -> Result<Vec<SavedCheck>, SavedError> {
        let mut out = Vec::new();
        for f in &self.manifest.files {
            let copy = self.dir.join(&f.saved_as);
            let saved = fs::read(&copy).map_err(io("read the saved copy", &copy))?;
            if sha256(&saved) != f.sha256 {
                return Err(SavedError::Damaged { path: f.path.clone(), copy });
            }
            let current = fs::read(&f.path).map_err(io("read", &f.path))?;
            let meta = fs::metadata(&f.path).map_err(io("stat", &f.path))?;
            out.push(SavedCheck { file: f.clone(), saved, current, current_perms: Perms::of(&meta) });
        }
        Ok(out)
    }

    /// Removes the set (after it was put back).
    pub fn remove(self) -> Result<(), SavedError> {
        fs::remove_dir_all(&self.dir).map_err(io("remove", &self.dir))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_set_round_trips_and_notices_damage_and_edits() {
        let root = tempfile::tempdir().unwrap();
        let owner = Owner::of(root.path()).unwrap();
        let conf = root.path().join("postgresql.conf");
        fs::write(&conf, "ssl = on\n").unwrap();
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o640)).unwrap();
        let dir = root.path().join("saved");
        let to_save = [ToSave { path: conf.clone(), kind: FileKind::Conf, written: Some(b"ssl = off\n".to_vec()) }];
        let set = SavedSet::create(&dir, owner, 4432, &to_save).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert!(matches!(SavedSet::create(&dir, owner, 4432, &to_save), Err(SavedError::Exists { .. })));
        // No temporary directory is left beside it.
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 2);

        fs::write(&conf, "ssl = off\n").unwrap(); // what disable wrote
        let checks = SavedSet::open(&dir).unwrap().unwrap().check().unwrap();
        assert!(!checks[0].edited_since() && !checks[0].is_same());
        assert_eq!(checks[0].file.mode, 0o640);
        fs::write(&conf, "ssl = off\nport = 1\n").unwrap(); // someone else's edit
        assert!(set.check().unwrap()[0].edited_since());

        fs::write(dir.join(&set.files()[0].saved_as), "tampered").unwrap();
        assert!(matches!(set.check(), Err(SavedError::Damaged { .. })));
        set.remove().unwrap();
        assert!(SavedSet::open(&dir).unwrap().is_none());
    }

    #[test]
    fn a_directory_without_a_manifest_is_not_a_set() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("saved");
        fs::create_dir(&dir).unwrap();
        assert!(matches!(SavedSet::open(&dir), Err(SavedError::NoManifest { .. })));
    }

    #[test]
    fn a_failure_while_saving_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let owner = Owner::of(root.path()).unwrap();
        let dir = root.path().join("saved");
        let missing = [ToSave { path: root.path().join("nope.conf"), kind: FileKind::Conf, written: None }];
        let r = SavedSet::create(&dir, owner, 4432, &missing);
        assert!(
            matches!(&r, Err(SavedError::Io { what: "read", path, source })
                if *path == missing[0].path && source.kind() == std::io::ErrorKind::NotFound),
            "{r:?}"
        );
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0, "no half-saved set, no temporary directory");
    }
}
