//! The configuration as the server reads it: the main file, its includes in reading order, then
//! `postgresql.auto.conf`; which line gives a setting its value, and which line to edit.
//!
//! The order and the rules follow `ProcessConfigFileInternal`/`ParseConfigFile` (PostgreSQL 12–16):
//! includes are read where they appear; relative paths are relative to the including file's directory;
//! `include_dir` reads the `*.conf` files of a directory sorted by name in byte order, skipping names that
//! start with `.`, subdirectories, and names shorter than 6 bytes; a missing `include` file or
//! `include_dir` directory is an error, a missing `include_if_exists` file is skipped with a log line;
//! nesting deeper than 10 levels is an error; `postgresql.auto.conf` (written by `ALTER SYSTEM`) is read
//! last from the data directory, so its values win. For every name the last assignment read wins.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::file::{ConfFile, Entry, IncludeKind, canonical_name};
use crate::ParseError;

/// The server's `CONF_FILE_MAX_DEPTH`: the main file is depth 0, and a file at depth 11 is refused.
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// The file `ALTER SYSTEM` writes, in the data directory.
pub const AUTO_CONF_FILE: &str = "postgresql.auto.conf";

/// A place in a file: `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One `name = value` line as read, in reading order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// The name as written.
    pub name: String,
    /// The decoded value.
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
    /// Whether the line is in `postgresql.auto.conf` (an `ALTER SYSTEM` value).
    pub auto_conf: bool,
}

/// Where a setting's value comes from: the last assignment read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The name as written on the winning line.
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub value: String,
    /// The value was set with `ALTER SYSTEM` (it is in `postgresql.auto.conf`).
    pub auto_conf: bool,
    /// Earlier assignments of the same setting that this one overrides, in reading order.
    pub overridden: Vec<Assignment>,
}

impl Source {
    /// `ALTER SYSTEM` overrides a value written in `postgresql.conf` or its includes: editing that file
    /// alone will not change the setting (run `ALTER SYSTEM RESET name`, or edit the auto file).
    pub fn auto_conf_overrides_file(&self) -> bool {
        self.auto_conf && self.overridden.iter().any(|a| !a.auto_conf)
    }
}

/// Where to edit a setting by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditTarget {
    /// The file holding the last assignment outside `postgresql.auto.conf`, or the main file.
    pub file: PathBuf,
    /// That assignment's line; `None` when no file sets the name (add it to the main file).
    pub line: Option<usize>,
    /// An `ALTER SYSTEM` value that will still win over whatever is written at `file`.
    pub shadowed_by: Option<Assignment>,
}

/// Something the server would log but not fail on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// A file of the tree and the directive that brought it in (`None` for the main and the auto file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeFile {
    pub path: PathBuf,
    pub included_from: Option<Origin>,
    #[serde(skip)]
    pub file: ConfFile,
}

/// Why the tree could not be read. Each of these also stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error(
        "failed to read configuration file \"{}\"{}: {source}\n\nhint: fix the path{}",
        path.display(),
        from_suffix(from),
        if from.is_some() { ", create the file, or use include_if_exists for an optional file" } else { "" }
    )]
    Read { path: PathBuf, from: Option<Origin>, source: io::Error },
    #[error("failed to read configuration directory \"{}\" (include_dir at {from}): {source}", path.display())]
    ReadDir { path: PathBuf, from: Origin, source: io::Error },
    #[error("configuration file \"{}\" is not UTF-8 text (first bad byte at offset {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("empty file name in {} at {from}", kind.keyword())]
    EmptyName { kind: IncludeKind, from: Origin },
    #[error(
        "failed to include \"{}\" at {from}: maximum nesting depth ({MAX_INCLUDE_DEPTH}) exceeded",
        path.display()
    )]
    TooDeep { path: PathBuf, from: Origin },
    #[error(
        "failed to include \"{}\" at {from}: include cycle {}\n\nhint: the server would refuse to start (\"configuration file recursion\" or \"maximum nesting depth exceeded\"); remove one of the include lines",
        path.display(),
        chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" -> ")
    )]
    Cycle { path: PathBuf, from: Origin, chain: Vec<PathBuf> },
}

fn from_suffix(from: &Option<Origin>) -> String {
    from.as_ref().map(|o| format!(" (included at {o})")).unwrap_or_default()
}

/// The whole configuration as the server would read it at startup or reload.
#[derive(Debug, Clone)]
pub struct ConfTree {
    main_file: PathBuf,
    data_dir: PathBuf,
    files: Vec<TreeFile>,
    assignments: Vec<Assignment>,
    notes: Vec<Note>,
}

impl ConfTree {
    /// Reads the tree from a data directory (its `postgresql.conf`) or from a main configuration file.
    ///
    /// Given a file, the data directory (for `postgresql.auto.conf`) is its `data_directory` setting when
    /// set — the Debian layout keeps `postgresql.conf` in `/etc` — else the file's directory. A relative
    /// `data_directory` is taken relative to the main file's directory; the server takes it relative to its
    /// working directory, which we cannot know.
    pub fn load(path: &Path) -> Result<ConfTree, LoadError> {
        let path = absolute(path);
        if path.is_dir() {
            return Self::load_with_data_dir(&path.join("postgresql.conf"), &path);
        }
        let mut tree = Self::read_main(&path)?;
        let dir = parent(&path);
        tree.data_dir = match tree.effective("data_directory") {
            Some(src) if !src.value.trim().is_empty() => normalize(&dir.join(&src.value)),
            _ => dir,
        };
        tree.read_auto()?;
        Ok(tree)
    }

    /// Reads the tree from `main_file`, with `postgresql.auto.conf` taken from `data_dir`.
    pub fn load_with_data_dir(main_file: &Path, data_dir: &Path) -> Result<ConfTree, LoadError> {
        let mut tree = Self::read_main(&absolute(main_file))?;
        tree.data_dir = absolute(data_dir);
        tree.read_auto()?;
        Ok(tree)
    }

    fn read_main(main: &Path) -> Result<ConfTree, LoadError> {
        let mut tree = ConfTree {
            main_file: main.to_path_buf(),
            data_dir: PathBuf::new(),
            files: Vec::new(),
            assignments: Vec::new(),
            notes: Vec::new(),
        };
        tree.read_file(main, true, None, 0, &mut Vec::new(), false)?;
        Ok(tree)
    }

    fn read_auto(&mut self) -> Result<(), LoadError> {
        let auto = self.auto_conf_path();
        self.read_file(&auto, false, None, 0, &mut Vec::new(), true)
    }

    fn read_file(
        &mut self,
        path: &Path,
        strict: bool,
        from: Option<Origin>,
        depth: usize,
        stack: &mut Vec<PathBuf>,
        auto_conf: bool,
    ) -> Result<(), LoadError> {
        if let Some(from) = &from {
            if depth > MAX_INCLUDE_DEPTH {
                return Err(LoadError::TooDeep { path: path.to_path_buf(), from: from.clone() });
            }
            // The server only spots a file including itself and otherwise runs into the depth limit; a
            // cycle is reported as such here because it is the actual mistake.
            if let Some(pos) = stack.iter().position(|p| same_file(p, path)) {
                let mut chain = stack[pos..].to_vec();
                chain.push(path.to_path_buf());
                return Err(LoadError::Cycle { path: path.to_path_buf(), from: from.clone(), chain });
            }
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !strict => {
                let (file, line) = match &from {
                    Some(o) => (o.file.clone(), Some(o.line)),
                    None => (path.to_path_buf(), None),
                };
                self.notes.push(Note {
                    file,
                    line,
                    message: format!("skipping missing configuration file \"{}\"", path.display()),
                });
                return Ok(());
            }
            Err(source) => return Err(LoadError::Read { path: path.to_path_buf(), from, source }),
        };
        let text = String::from_utf8(bytes)
            .map_err(|e| LoadError::NotUtf8 { path: path.to_path_buf(), offset: e.utf8_error().valid_up_to() })?;
        let file = ConfFile::parse(&text, path)?;
        if file.has_bom() {
            self.notes.push(Note {
                file: path.to_path_buf(),
                line: Some(1),
                message: "the file starts with a UTF-8 byte order mark, which PostgreSQL does not skip: it reads \
                          it as part of line 1 and refuses to start; save the file without BOM"
                    .to_owned(),
            });
        }
        tracing::debug!(file = %path.display(), depth, "read configuration file");
        let entries: Vec<Entry> = file.entries().cloned().collect();
        self.files.push(TreeFile { path: path.to_path_buf(), included_from: from, file });
        stack.push(path.to_path_buf());
        let dir = parent(path);
        for entry in entries {
            match entry {
                Entry::Setting(s) => self.assignments.push(Assignment {
                    name: s.name,
                    value: s.value,
                    file: path.to_path_buf(),
                    line: s.line,
                    auto_conf,
                }),
                Entry::Include(inc) => {
                    let origin = Origin { file: path.to_path_buf(), line: inc.line };
                    // The server refuses an all-blank name: it would otherwise try to read the directory.
                    if inc.path.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
                        return Err(LoadError::EmptyName { kind: inc.kind, from: origin });
                    }
                    let target = normalize(&dir.join(&inc.path));
                    match inc.kind {
                        IncludeKind::Include | IncludeKind::IncludeIfExists => {
                            let strict = inc.kind == IncludeKind::Include;
                            self.read_file(&target, strict, Some(origin), depth + 1, stack, auto_conf)?;
                        }
                        IncludeKind::IncludeDir => {
                            for file in conf_files_in(&target, &origin)? {
                                self.read_file(&file, true, Some(origin.clone()), depth + 1, stack, auto_conf)?;
                            }
                        }
                    }
                }
            }
        }
        stack.pop();
        Ok(())
    }

    /// The main configuration file.
    pub fn main_file(&self) -> &Path {
        &self.main_file
    }

    /// The data directory `postgresql.auto.conf` is read from.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `postgresql.auto.conf` in the data directory (it may not exist).
    pub fn auto_conf_path(&self) -> PathBuf {
        self.data_dir.join(AUTO_CONF_FILE)
    }

    /// The files read, in reading order.
    pub fn files(&self) -> &[TreeFile] {
        &self.files
    }

    /// One file of the tree, by the path it was read from.
    pub fn file(&self, path: &Path) -> Option<&ConfFile> {
        self.files.iter().find(|f| f.path == path).map(|f| &f.file)
    }

    /// Every assignment in reading order.
    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }

    /// What the server would log without failing (skipped optional includes, byte order marks).
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// Where `name` gets its value from the files: the last assignment read, with the ones it overrides.
    /// `None` means no file sets it (the server uses its built-in default or the command line).
    pub fn effective(&self, name: &str) -> Option<Source> {
        let key = canonical_name(name);
        let mut all: Vec<&Assignment> = self.assignments.iter().filter(|a| canonical_name(&a.name) == key).collect();
        let last = all.pop()?;
        Some(Source {
            name: last.name.clone(),
            file: last.file.clone(),
            line: last.line,
            value: last.value.clone(),
            auto_conf: last.auto_conf,
            overridden: all.into_iter().cloned().collect(),
        })
    }

    /// The file and line to edit for `name`: the last assignment outside `postgresql.auto.conf` (editing
    /// an earlier one would be overridden by it), else the main file. Reports an `ALTER SYSTEM` value
    /// that would still win.
    pub fn edit_target(&self, name: &str) -> EditTarget {
        let key = canonical_name(name);
        let matching = || self.assignments.iter().filter(|a| canonical_name(&a.name) == key);
        let last_in_files = matching().rfind(|a| !a.auto_conf);
        let shadowed_by = matching().rfind(|a| a.auto_conf).cloned();
        match last_in_files {
            Some(a) => EditTarget { file: a.file.clone(), line: Some(a.line), shadowed_by },
            None => EditTarget { file: self.main_file.clone(), line: None, shadowed_by },
        }
    }
}

/// The `*.conf` files of an `include_dir`, as the server picks and orders them.
pub(crate) fn conf_files_in(dir: &Path, from: &Origin) -> Result<Vec<PathBuf>, LoadError> {
    let read_err = |source| LoadError::ReadDir { path: dir.to_path_buf(), from: from.clone(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.len() < 6 || bytes[0] == b'.' || !bytes.ends_with(b".conf") {
            continue;
        }
        let path = dir.join(&name);
        // `stat`, not `lstat`: a symlink to a file counts, a directory named `x.conf` does not.
        let meta = std::fs::metadata(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            from: Some(from.clone()),
            source,
        })?;
        if !meta.is_dir() {
            names.push(name);
        }
    }
    // `strcmp` order, not the locale's: `B.conf` sorts before `a.conf`, `10.conf` before `9.conf`.
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    normalize(&joined)
}

pub(crate) fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Lexical clean-up like the server's `canonicalize_path`: drops `.` and resolves `..` without touching
/// the file system (symlinks are not resolved).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The same file, also through symlinks when both resolve.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

impl qrd_exit::UserError for LoadError {
    /// A configuration qrd cannot read or parse as the server would: refused, nothing changed.
    fn exit_status(&self) -> qrd_exit::ExitStatus {
        qrd_exit::ExitStatus::Refused
    }

    fn hint(&self) -> Option<String> {
        Some("fix the file at the place named above; nothing was changed".into())
    }
}
