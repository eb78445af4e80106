//! Writing postgresql.conf or pg_hba.conf so that a server is never left with a broken file:
//!
//! 1. `--dry-run`: print the unified diff, change nothing;
//! 2. write (backup copy beside the file, atomic replace, owner and mode kept);
//! 3. with a server: ask it for the errors in the file as it is on disk now (`pg_hba_file_rules` /
//!    `pg_file_settings` parse the files afresh). New errors (ones that were not there before the edit)
//!    put the previous file back before the server ever loads it;
//! 4. reload, wait until the server has processed it, and ask again; new errors now put the previous file
//!    back and reload once more.
//!
//! Either way the command then fails with the server's messages and the backup's path.

use qrd_conf::write::{Applied, FileEdit};
use qrd_pg::Session;
use qrd_pg::serverconf::{self, FileError};

use crate::error::{CliError, ExitStatus};
use crate::output::note;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Hba,
    Conf,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Hba => "pg_hba.conf",
            Which::Conf => "postgresql.conf",
        }
    }

    /// The server's complaints about the file on disk. `applied`: as the server applies postgresql.conf
    /// (before an edit and after the reload), which also catches values only the server can judge; before
    /// the reload that view would count every pending restart as an error.
    async fn errors(self, session: &Session, applied: bool) -> Result<Vec<FileError>, CliError> {
        Ok(match self {
            Which::Hba => serverconf::hba_errors(session).await?,
            Which::Conf if applied => serverconf::applied_conf_errors(session).await?,
            Which::Conf => serverconf::conf_errors(session).await?,
        })
    }
}

/// What happened to the file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub applied: Option<Applied>,
    /// The server processed a reload after the write.
    pub reloaded: bool,
}

pub struct Options {
    pub dry_run: bool,
    /// Reload after writing (when a server is reachable).
    pub reload: bool,
}

pub async fn write(
    edit: &FileEdit,
    which: Which,
    session: Option<&Session>,
    opts: &Options,
) -> Result<Written, CliError> {
    let mut written = write_all(std::slice::from_ref(edit), which, session, opts).await?;
    Ok(Written { applied: written.applied.pop(), reloaded: written.reloaded })
}

/// What happened to several files written together.
pub struct WrittenAll {
    pub applied: Vec<Applied>,
    pub reloaded: bool,
}

/// Writes several files of one kind as one change: all are written, then checked by the server and
/// reloaded once; any failure puts every one of them back (in reverse order) and reloads again.
pub async fn write_all(
    edits: &[FileEdit],
    which: Which,
    session: Option<&Session>,
    opts: &Options,
) -> Result<WrittenAll, CliError> {
    let edits: Vec<&FileEdit> = edits
        .iter()
        .filter(|e| {
            if !e.is_change() {
                note(format!("{}: already as asked, nothing to write", e.path.display()));
            }
            e.is_change()
        })
        .collect();
    if edits.is_empty() {
        return Ok(WrittenAll { applied: Vec::new(), reloaded: false });
    }
    if opts.dry_run {
        for e in &edits {
            print!("{}", e.diff());
            note(format!("dry run: {} not changed", e.path.display()));
        }
        return Ok(WrittenAll { applied: Vec::new(), reloaded: false });
    }
    let before = match session {
        Some(s) => which.errors(s, true).await?,
        None => Vec::new(),
    };
    for e in &before {
        note(format!("warning: the server already reports an error in its configuration: {e}"));
    }
    let mut applied: Vec<Applied> = Vec::new();
    for e in &edits {
        match e.apply() {
            Ok(a) => {
                note(format!("wrote {} (previous version: {})", a.path.display(), a.backup.display()));
                applied.push(a);
            }
            Err(err) => {
                restore(&applied)?;
                let hint = if applied.is_empty() {
                    "nothing was changed; check the file's permissions".to_owned()
                } else {
                    "the files written before it were put back; check the file's permissions".to_owned()
                };
                return Err(CliError::new(ExitStatus::Failed, err.to_string()).hint(hint));
            }
        }
    }
    let Some(session) = session else {
        note(format!("no server connection: {} was not checked by the server nor reloaded", which.name()));
        return Ok(WrittenAll { applied, reloaded: false });
    };

    let fresh = match which.errors(session, false).await {
        Ok(errors) => new_errors(errors, &before),
        Err(e) => {
            restore(&applied)?;
            return Err(e.hint("the previous files are back in place; nothing was reloaded"));
        }
    };
    if !fresh.is_empty() {
        restore(&applied)?;
        return Err(rejected(which, &fresh, &applied, false));
    }
    if !opts.reload {
        note(format!("not reloaded (--no-reload): run `SELECT pg_reload_conf()` to apply {}", which.name()));
        return Ok(WrittenAll { applied, reloaded: false });
    }
    let reloaded = serverconf::reload(session).await?;
    let fresh = new_errors(which.errors(session, true).await?, &before);
    if !fresh.is_empty() {
        restore(&applied)?;
        serverconf::reload(session).await?;
        return Err(rejected(which, &fresh, &applied, true));
    }
    note(if reloaded { "reloaded" } else { "reload requested, not yet confirmed by the server" });
    Ok(WrittenAll { applied, reloaded })
}

/// The errors in `after` that were not there `before`. Line numbers are left out of the comparison: an
/// edit above an old complaint moves it down without making it new. Each old error excuses one new one
/// with the same file, setting and text.
fn new_errors(after: Vec<FileError>, before: &[FileError]) -> Vec<FileError> {
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

/// Puts every written file back, last first.
fn restore(applied: &[Applied]) -> Result<(), CliError> {
    for a in applied.iter().rev() {
        a.undo().map_err(|e| {
            CliError::new(
                ExitStatus::Failed,
                format!("the server rejects the new file AND putting the previous one back failed: {e}"),
            )
            .hint(format!(
                "copy {} over {} yourself now, then reload",
                a.backup.display(),
                a.path.display()
            ))
        })?;
    }
    Ok(())
}

fn rejected(which: Which, errors: &[FileError], applied: &[Applied], reloaded: bool) -> CliError {
    let list: Vec<String> = errors.iter().map(|e| format!("\n  {e}")).collect();
    let backups: Vec<String> = applied.iter().map(|a| a.backup.display().to_string()).collect();
    CliError::new(
        ExitStatus::Failed,
        format!(
            "the server rejects the edited {}:{}\nthe previous file is back in place{}",
            which.name(),
            list.concat(),
            if reloaded { " and reloaded" } else { " (the server never loaded the broken one)" }
        ),
    )
    .hint(format!("the rejected version is not kept; the previous one is also saved as {}", backups.join(", ")))
}
