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

    async fn errors(self, session: &Session) -> Result<Vec<FileError>, CliError> {
        Ok(match self {
            Which::Hba => serverconf::hba_errors(session).await?,
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
    if !edit.is_change() {
        note(format!("{}: already as asked, nothing to write", edit.path.display()));
        return Ok(Written { applied: None, reloaded: false });
    }
    if opts.dry_run {
        print!("{}", edit.diff());
        note(format!("dry run: {} not changed", edit.path.display()));
        return Ok(Written { applied: None, reloaded: false });
    }
    let before = match session {
        Some(s) => which.errors(s).await?,
        None => Vec::new(),
    };
    for e in &before {
        note(format!("warning: the server already reports an error in its configuration: {e}"));
    }
    let applied = edit.apply().map_err(|e| {
        CliError::new(ExitStatus::Failed, e.to_string()).hint("nothing was changed; check the file's permissions")
    })?;
    note(format!("wrote {} (previous version: {})", applied.path.display(), applied.backup.display()));
    let Some(session) = session else {
        note(format!("no server connection: {} was not checked by the server nor reloaded", which.name()));
        return Ok(Written { applied: Some(applied), reloaded: false });
    };

    let fresh = new_errors(which.errors(session).await?, &before);
    if !fresh.is_empty() {
        restore(&applied)?;
        return Err(rejected(which, &fresh, &applied, false));
    }
    if !opts.reload {
        note(format!("not reloaded (--no-reload): run `SELECT pg_reload_conf()` to apply {}", which.name()));
        return Ok(Written { applied: Some(applied), reloaded: false });
    }
    let reloaded = serverconf::reload(session).await?;
    let fresh = new_errors(which.errors(session).await?, &before);
    if !fresh.is_empty() {
        restore(&applied)?;
        serverconf::reload(session).await?;
        return Err(rejected(which, &fresh, &applied, true));
    }
    note(if reloaded { "reloaded" } else { "reload requested, not yet confirmed by the server" });
    Ok(Written { applied: Some(applied), reloaded })
}

fn new_errors(after: Vec<FileError>, before: &[FileError]) -> Vec<FileError> {
    after.into_iter().filter(|e| !before.contains(e)).collect()
}

fn restore(applied: &Applied) -> Result<(), CliError> {
    applied.restore().map_err(|e| {
        CliError::new(
            ExitStatus::Failed,
            format!("the server rejects the new file AND putting the previous one back failed: {e}"),
        )
        .hint(format!(
            "copy {} over {} yourself now, then reload",
            applied.backup.display(),
            applied.path.display()
        ))
    })
}

fn rejected(which: Which, errors: &[FileError], applied: &Applied, reloaded: bool) -> CliError {
    let list: Vec<String> = errors.iter().map(|e| format!("\n  {e}")).collect();
    CliError::new(
        ExitStatus::Failed,
        format!(
            "the server rejects the edited {}:{}\nthe previous file is back in place{}",
            which.name(),
            list.concat(),
            if reloaded { " and reloaded" } else { " (the server never loaded the broken one)" }
        ),
    )
    .hint(format!("the rejected version is not kept; the previous one is also saved as {}", applied.backup.display()))
}
