//! pg_hba.conf with the files it includes (PostgreSQL 16: `include`, `include_if_exists`, `include_dir`):
//! every file whose rules the server reads, in reading order, so that a change to rules of one kind (md5 →
//! scram-sha-256, say) reaches them wherever they are written.
//!
//! The files are found as the server finds them (`tokenize_auth_file` in `hba.c`): a relative path is
//! relative to the including file's directory; `include_dir` takes the directory's `*.conf` files in byte
//! order (the rules of postgresql.conf's `include_dir`, shared with [`crate::pgconf`]); a missing
//! `include_if_exists` file is skipped; a missing `include` file, an unreadable directory and nesting deeper
//! than 10 levels are errors, as they are for the server. PostgreSQL 12–15 know no include directives (they
//! refuse the file), so callers read the main file alone there ([`HbaTree::main_only`]).

use std::path::{Path, PathBuf};

use super::{HbaFile, Include};
use crate::IncludeKind;
use crate::pgconf::tree::{self, LoadError, MAX_INCLUDE_DEPTH, Origin};

/// One file of the tree.
#[derive(Debug, Clone)]
pub struct HbaTreeFile {
    pub path: PathBuf,
    /// The text as read: the "before" of an edit, so a file changed meanwhile is not overwritten.
    pub text: String,
    pub file: HbaFile,
    /// The include directive that brought the file in; `None` for the main file.
    pub included_from: Option<Origin>,
}

impl HbaTreeFile {
    /// The main pg_hba.conf (not an included file).
    pub fn is_main(&self) -> bool {
        self.included_from.is_none()
    }
}

/// pg_hba.conf and the files it includes, in the order the server reads their rules.
#[derive(Debug, Clone)]
pub struct HbaTree {
    files: Vec<HbaTreeFile>,
    skipped: Vec<(PathBuf, Origin)>,
}

impl HbaTree {
    /// The main file alone, include directives not followed (PostgreSQL 12–15).
    pub fn main_only(path: &Path, text: &str) -> Result<HbaTree, LoadError> {
        let file = HbaFile::parse(text, path)?;
        let main = HbaTreeFile { path: path.to_path_buf(), text: text.to_owned(), file, included_from: None };
        Ok(HbaTree { files: vec![main], skipped: Vec::new() })
    }

    /// The main file (`text`, read from `path` by the caller) and every file it includes, read from disk.
    pub fn load(path: &Path, text: &str) -> Result<HbaTree, LoadError> {
        let mut tree = HbaTree { files: Vec::new(), skipped: Vec::new() };
        tree.read(path, text.to_owned(), None, 0, &mut Vec::new())?;
        Ok(tree)
    }

    /// The files, main file first, in reading order.
    pub fn files(&self) -> &[HbaTreeFile] {
        &self.files
    }

    pub fn main(&self) -> &HbaTreeFile {
        &self.files[0]
    }

    /// `include_if_exists` files that do not exist (the server skips them with a log line).
    pub fn skipped(&self) -> &[(PathBuf, Origin)] {
        &self.skipped
    }

    fn read(
        &mut self,
        path: &Path,
        text: String,
        from: Option<Origin>,
        depth: usize,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), LoadError> {
        let file = HbaFile::parse(&text, path)?;
        let includes: Vec<(usize, Include)> = file.includes().map(|(line, inc)| (line, inc.clone())).collect();
        self.files.push(HbaTreeFile { path: path.to_path_buf(), text, file, included_from: from });
        stack.push(path.to_path_buf());
        let dir = tree::parent(path);
        for (line, inc) in includes {
            let origin = Origin { file: path.to_path_buf(), line };
            if inc.path.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
                return Err(LoadError::EmptyName { kind: inc.kind, from: origin });
            }
            let target = tree::normalize(&dir.join(&inc.path));
            match inc.kind {
                IncludeKind::Include | IncludeKind::IncludeIfExists => {
                    let strict = inc.kind == IncludeKind::Include;
                    self.open(&target, strict, origin, depth + 1, stack)?;
                }
                IncludeKind::IncludeDir => {
                    for file in tree::conf_files_in(&target, &origin)? {
                        self.open(&file, true, origin.clone(), depth + 1, stack)?;
                    }
                }
            }
        }
        stack.pop();
        Ok(())
    }

    fn open(
        &mut self,
        path: &Path,
        strict: bool,
        from: Origin,
        depth: usize,
        stack: &mut Vec<PathBuf>,
    ) -> Result<(), LoadError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(LoadError::TooDeep { path: path.to_path_buf(), from });
        }
        if let Some(pos) = stack.iter().position(|p| tree::same_file(p, path)) {
            let mut chain = stack[pos..].to_vec();
            chain.push(path.to_path_buf());
            return Err(LoadError::Cycle { path: path.to_path_buf(), from, chain });
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !strict => {
                self.skipped.push((path.to_path_buf(), from));
                return Ok(());
            }
            Err(source) => return Err(LoadError::Read { path: path.to_path_buf(), from: Some(from), source }),
        };
        let text = String::from_utf8(bytes)
            .map_err(|e| LoadError::NotUtf8 { path: path.to_path_buf(), offset: e.utf8_error().valid_up_to() })?;
        self.read(path, text, Some(from), depth, stack)
    }
}
