//! Writing postgresql.conf and pg_hba.conf so that a server is never left with a broken file:
//!
//! 1. `--dry-run`: the unified diffs, nothing changed;
//! 2. write every file (backup copy beside it, atomic replace, owner and mode kept);
//! 3. with a server: ask it for the errors in the files as they are on disk now (`pg_hba_file_rules` /
//!    `pg_file_settings` parse the files afresh). New errors (ones that were not there before the edit)
//!    put the previous files back before the server ever loads them;
//! 4. reload once, wait until the server has processed it, and ask again; new errors now put the previous
//!    files back and reload once more.
//!
//! Several files (of either kind) are one change: all are written, checked and reloaded together, and any
//! failure puts every one of them back, last first.

use qrd_exit::{ExitStatus, UserError};
use std::path::PathBuf;

use qrd_conf::write::{self, Applied, FileEdit};
use qrd_pg::Session;
use qrd_pg::inventory::QueryError;
use qrd_pg::serverconf::{self, FileError};

use crate::FileKind;
use crate::journal::{Journal, UndoProblem};

/// How to write.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Compute and return the diffs only.
    pub dry_run: bool,
    /// Reload after writing (when a server is reachable).
    pub reload: bool,
}

/// One change to several configuration files.
#[derive(Debug, Clone, Default)]
pub struct CheckedWrite {
    edits: Vec<(FileEdit, FileKind)>,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Written {
    /// The files written, in order; [`Journal::undo`] on `journal` puts them back.
    pub applied: Vec<Applied>,
    pub journal: Journal,
    /// The server processed a reload after the write.
    pub reloaded: bool,
    /// `--dry-run`: the unified diff of each file that would change.
    pub diffs: Vec<String>,
    /// The files that already said what was asked.
    pub unchanged: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Asking the server failed before anything was written.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Writing a file failed; the files written before it are back.
    #[error("{source}")]
    Write {
        #[source]
        source: write::WriteError,
        /// Files were written before the failure (and put back).
        earlier: bool,
    },
    /// Asking the server after the write failed; the previous files are back, nothing was reloaded.
    #[error("{source}")]
    CheckFailed {
        #[source]
        source: QueryError,
    },
    /// The server finds new errors in the edited files; the previous files are back.
    #[error(
        "the server rejects the edited {}:{}\nthe previous file is back in place{}",
        names(kinds),
        errors.iter().map(|e| format!("\n  {e}")).collect::<String>(),
        if *reloaded { " and reloaded" } else { " (the server never loaded the broken one)" }
    )]
    Rejected { kinds: Vec<FileKind>, errors: Vec<FileError>, backups: Vec<PathBuf>, reloaded: bool },
    /// Putting the previous files back failed as well: the DBA must act now.
    #[error(
        "{cause}, AND putting the previous files back failed:{}",
        problems.iter().map(|p| format!("\n  {p}")).collect::<String>()
    )]
    UndoFailed { cause: String, problems: Vec<UndoProblem> },
}

fn names(kinds: &[FileKind]) -> String {
    let mut v: Vec<&str> = kinds.iter().map(|k| k.file_name()).collect();
    v.dedup();
    v.join(" and ")
}

impl UserError for WriteError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // Asking the server failed before anything was written: as the query says (a lost connection is 3).
            WriteError::Query(e) => e.exit_status(),
            // Every failure after the first write happens while working: the files are back as they were
            // (or the message says which are not).
            _ => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl WriteError {
    fn hint_text(&self) -> String {
        match self {
            WriteError::Query(_) => "nothing was changed; run again with -v for the statements qrd runs".into(),
            WriteError::Write { earlier: false, .. } => "nothing was changed; check the file's permissions".into(),
            WriteError::Write { earlier: true, .. } => {
                "the files written before it were put back; check the file's permissions".into()
            }
            WriteError::CheckFailed { .. } => "the previous files are back in place; nothing was reloaded".into(),
            WriteError::Rejected { backups, .. } => format!(
                "the rejected version is not kept; the previous one is also saved as {}",
                backups.iter().map(|b| b.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            WriteError::UndoFailed { problems, .. } => format!(
                "copy each backup over its file yourself now, then reload: {}",
                problems
                    .iter()
                    .filter_map(|p| p.backup.as_ref().map(|b| format!("{} → {}", b.display(), p.path.display())))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl CheckedWrite {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn one(edit: FileEdit, kind: FileKind) -> Self {
        Self { edits: vec![(edit, kind)] }
    }

    pub fn add(&mut self, edit: FileEdit, kind: FileKind) -> &mut Self {
        self.edits.push((edit, kind));
        self
    }

    pub fn is_change(&self) -> bool {
        self.edits.iter().any(|(e, _)| e.is_change())
    }

    /// The unified diffs of the files that would change.
    pub fn diffs(&self) -> Vec<String> {
        self.edits.iter().filter(|(e, _)| e.is_change()).map(|(e, _)| e.diff()).collect()
    }

    /// Writes, checks and reloads (see the module documentation). `session` is the server that reads the
    /// files; without one the files are written alone.
    pub async fn apply(&self, session: Option<&Session>, opts: WriteOptions) -> Result<Written, WriteError> {
        let mut written = Written::default();
        let mut edits = Vec::new();
        for (e, k) in &self.edits {
            if e.is_change() {
                edits.push((e, *k));
            } else {
                tracing::info!("{}: already as asked, nothing to write", e.path.display());
                written.unchanged.push(e.path.clone());
            }
        }
        if edits.is_empty() {
            return Ok(written);
        }
        if opts.dry_run {
            for (e, _) in &edits {
                written.diffs.push(e.diff());
                tracing::info!("dry run: {} not changed", e.path.display());
            }
            return Ok(written);
        }
        let mut kinds: Vec<FileKind> = edits.iter().map(|(_, k)| *k).collect();
        kinds.sort_by_key(|k| *k == FileKind::Hba);
        kinds.dedup();
        let before = match session {
            Some(s) => errors(s, &kinds, true).await?,
            None => Vec::new(),
        };
        for e in &before {
            tracing::warn!("the server already reports an error in its configuration: {e}");
        }
        for (e, _) in &edits {
            match e.apply() {
                Ok(a) => {
                    tracing::info!("wrote {} (previous version: {})", a.path.display(), a.backup.display());
                    written.journal.edited(a.clone());
                    written.applied.push(a);
                }
                Err(source) => {
                    let earlier = !written.applied.is_empty();
                    let cause = WriteError::Write { source, earlier };
                    return Err(undo(written.journal, None, cause).await);
                }
            }
        }
        let Some(session) = session else {
            tracing::info!("no server connection: {} not checked by the server nor reloaded", names(&kinds));
            return Ok(written);
        };
        let fresh = match errors(session, &kinds, false).await {
            Ok(after) => new_errors(after, &before),
            Err(source) => return Err(undo(written.journal, None, WriteError::CheckFailed { source }).await),
        };
        if !fresh.is_empty() {
            let backups = written.applied.iter().map(|a| a.backup.clone()).collect();
            let cause = WriteError::Rejected { kinds, errors: fresh, backups, reloaded: false };
            return Err(undo(written.journal, None, cause).await);
        }
        if !opts.reload {
            tracing::info!("not reloaded (--no-reload): run `SELECT pg_reload_conf()` to apply {}", names(&kinds));
            return Ok(written);
        }
        written.reloaded = match serverconf::reload(session).await {
            Ok(r) => r,
            Err(source) => return Err(undo(written.journal, None, WriteError::CheckFailed { source }).await),
        };
        let fresh = match errors(session, &kinds, true).await {
            Ok(after) => new_errors(after, &before),
            Err(source) => {
                return Err(undo(written.journal, Some(session), WriteError::CheckFailed { source }).await);
            }
        };
        if !fresh.is_empty() {
            let backups = written.applied.iter().map(|a| a.backup.clone()).collect();
            let cause = WriteError::Rejected { kinds, errors: fresh, backups, reloaded: true };
            return Err(undo(written.journal, Some(session), cause).await);
        }
        tracing::info!(
            "{}",
            if written.reloaded { "reloaded" } else { "reload requested, not yet confirmed by the server" }
        );
        Ok(written)
    }
}

/// Checked writes applied one after another, each checked and reloaded before the next, as one change:
/// when a stage fails, the stages before it are put back and the server reloads them. For changes whose
/// files the server can only judge in order: pg_hba.conf `hostssl` rules count as errors until `ssl = on`
/// is loaded, so turning TLS on writes postgresql.conf first and pg_hba.conf second, and off the other way.
pub async fn apply_in_order(
    stages: &[CheckedWrite],
    session: &Session,
    opts: WriteOptions,
) -> Result<Written, WriteError> {
    let mut done = Written::default();
    for stage in stages {
        match stage.apply(Some(session), opts).await {
            Ok(w) => {
                done.applied.extend(w.applied);
                done.journal.append(w.journal);
                done.reloaded |= w.reloaded;
                done.diffs.extend(w.diffs);
                done.unchanged.extend(w.unchanged);
            }
            Err(cause) if done.journal.is_empty() => return Err(cause),
            Err(cause) => {
                let problems = std::mem::take(&mut done.journal).undo(Some(session)).await;
                return Err(if problems.is_empty() {
                    cause
                } else {
                    WriteError::UndoFailed { cause: cause.to_string(), problems }
                });
            }
        }
    }
    Ok(done)
}

/// Puts everything back (and reloads when the server had loaded the new files); the cause stays the
/// error unless undoing failed too.
async fn undo(journal: Journal, reload: Option<&Session>, cause: WriteError) -> WriteError {
    let problems = journal.undo(reload).await;
    if problems.is_empty() { cause } else { WriteError::UndoFailed { cause: cause.to_string(), problems } }
}

/// The server's complaints about the files on disk. `applied`: as the server applies postgresql.conf
/// (before an edit and after the reload), which also catches values only the server can judge; before the
/// reload that view would count every pending restart as an error.
async fn errors(session: &Session, kinds: &[FileKind], applied: bool) -> Result<Vec<FileError>, QueryError> {
    let mut out = Vec::new();
    for kind in kinds {
        out.extend(match kind {
            FileKind::Hba => serverconf::hba_errors(session).await?,
            FileKind::Conf if applied => serverconf::applied_conf_errors(session).await?,
            FileKind::Conf => serverconf::conf_errors(session).await?,
        });
    }
    Ok(out)
}

/// The errors in `after` that were not there `before`. Line numbers are left out of the comparison: an
/// edit above an old complaint moves it down without making it new. Each old error excuses one new one
/// with the same file, setting and text.
pub fn new_errors(after: Vec<FileError>, before: &[FileError]) -> Vec<FileError> {
    let key = |e: &FileError| (e.file.clone(), e.name.clone(), e.error.clone());
    let mut excused: Vec<_> = before.iter().map(key).collect();
    after
        .into_iter()
        .filter(|e| match excused.iter().position(|k| *k == key(e)) {
            Some(i) => {
                excused.swap_remove(i);
                false
            }
            None => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(file: &str, line: i32, name: Option<&str>, error: &str) -> FileError {
        FileError { file: Some(file.into()), line: Some(line), name: name.map(Into::into), error: error.into() }
    }

    #[test]
    fn a_moved_old_error_is_not_new_but_a_second_copy_is() {
        let before = vec![err("/d/pg_hba.conf", 3, None, "hostssl record cannot match because SSL is disabled")];
        let after = vec![
            err("/d/pg_hba.conf", 4, None, "hostssl record cannot match because SSL is disabled"),
            err("/d/pg_hba.conf", 9, None, "hostssl record cannot match because SSL is disabled"),
            err("/d/postgresql.conf", 2, Some("port"), "invalid value"),
        ];
        let fresh = new_errors(after, &before);
        assert_eq!(fresh.iter().map(|e| e.line.unwrap()).collect::<Vec<_>>(), [9, 2]);
    }

    #[tokio::test]
    async fn a_failed_write_puts_the_earlier_files_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("postgresql.conf"), dir.path().join("pg_hba.conf"));
        std::fs::write(&a, "port = 1\n").unwrap();
        std::fs::write(&b, "local all all trust\n").unwrap();
        let mut w = CheckedWrite::new();
        w.add(FileEdit::new(&a, "port = 1\n", "port = 2\n"), FileKind::Conf);
        // Computed from text that is no longer on disk: refused, so the first file must go back.
        w.add(FileEdit::new(&b, "something else\n", "x\n"), FileKind::Hba);
        let e = w.apply(None, WriteOptions { dry_run: false, reload: true }).await.unwrap_err();
        assert!(matches!(e, WriteError::Write { earlier: true, .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "port = 1\n");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "local all all trust\n");
    }

    #[tokio::test]
    async fn dry_run_returns_diffs_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("postgresql.conf");
        std::fs::write(&a, "port = 1\n").unwrap();
        let w = CheckedWrite::one(FileEdit::new(&a, "port = 1\n", "port = 2\n"), FileKind::Conf);
        let out = w.apply(None, WriteOptions { dry_run: true, reload: true }).await.unwrap();
        assert_eq!(out.diffs.len(), 1);
        assert!(out.diffs[0].contains("+port = 2"), "{}", out.diffs[0]);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "port = 1\n");
    }
}
