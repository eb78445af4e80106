//! The tool runs a restore and a drill share: one database archive restored into one database by
//! `pg_restore` ([`restore_into`]), and a restored database checked by `pg_amcheck` ([`amcheck`]). Both go
//! through the one runner ([`qrd_pgbin::run`]) with the session's connection settings (password through
//! a passfile) and the database named as a quoted conninfo value, whatever characters its name holds.

use std::path::Path;

use qrd_pg::Session;
use qrd_pgbin::{FoundTool, ToolError, conninfo_value, run, scrubbed_command};

use crate::manifest::{ArchiveFormat, Database};
use crate::progress::Shared;
use crate::restore::RestoreError;

/// Whether the archive's owners and privileges are restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// As on the source (a restore: the roles came from `globals.sql`).
    Keep,
    /// `--no-owner --no-privileges`: the drill's scratch databases, which touch no role.
    Skip,
}

/// How archives are restored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load<'a> {
    pub pg_restore: &'a FoundTool,
    /// pg_restore's parallel workers for directory archives.
    pub jobs: u32,
    pub ownership: Ownership,
}

/// Restores `db`'s archive (unpacked at `archive`) into the existing database `into` with `pg_restore`,
/// stopping at the first error.
pub(crate) async fn restore_into(
    session: &Session,
    load: Load<'_>,
    db: &Database,
    archive: &Path,
    into: &str,
    progress: &Shared,
) -> Result<(), RestoreError> {
    let pg_restore = load.pg_restore;
    // The child's passfile lives as long as this value: until pg_restore has ended.
    let child = session.connector().child(into)?;
    let mut cmd = scrubbed_command(&pg_restore.path);
    child.apply(&mut cmd);
    cmd.args(["--no-password", "--exit-on-error"]);
    if load.ownership == Ownership::Skip {
        cmd.args(["--no-owner", "--no-privileges"]);
    }
    if db.format == ArchiveFormat::Directory && load.jobs > 1 {
        cmd.arg(format!("--jobs={}", load.jobs));
    }
    cmd.arg("--dbname").arg(format!("dbname={}", conninfo_value(into))).arg(archive);
    let what = if into == db.name { db.name.clone() } else { format!("{} into {into}", db.name) };
    tracing::info!("restoring {what} (pg_restore {})", pg_restore.version);
    let action = format!("restore {:?} into {into:?} (pg_restore)", db.name);
    progress.start(&format!("restoring {what}"), None);
    let result = run(cmd, &action).await;
    progress.finish();
    drop(child);
    result?;
    Ok(())
}

/// Checks the tables and B-tree indexes of database `into` (the restored copy of `name`) with `pg_amcheck`
/// at `tool`, installing the amcheck extension there if needed; what it finds fails with its first lines.
pub(crate) async fn amcheck(
    session: &Session,
    tool: &Path,
    name: &str,
    into: &str,
    progress: &Shared,
) -> Result<(), RestoreError> {
    let child = session.connector().child(into)?;
    let mut cmd = scrubbed_command(tool);
    child.apply(&mut cmd);
    // The database as the positional connection string: --database takes a pattern.
    cmd.args(["--no-password", "--install-missing"]).arg(format!("dbname={}", conninfo_value(into)));
    let action = format!("check {name:?} restored into {into:?} (pg_amcheck)");
    progress.start(&format!("pg_amcheck of {name}"), None);
    let result = run(cmd, &action).await;
    progress.finish();
    drop(child);
    match result {
        Ok(_) => Ok(()),
        // Findings; a pg_amcheck killed by a signal found nothing and is the tool's failure.
        Err(ToolError::Exit { status, stdout, stderr, .. }) if status.code().is_some() => Err(RestoreError::Amcheck {
            database: name.to_owned(),
            findings: format!("{stdout}{stderr}").lines().take(20).map(str::to_owned).collect(),
        }),
        Err(e) => Err(e.into()),
    }
}
