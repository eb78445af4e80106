//! Running the PostgreSQL tools a backup needs, with the server's major or newer: `pg_dumpall
//! --globals-only` for the roles and `pg_dump` per database.
//! Each runs as a child through [`qrd_pgbin::run`] (environment scrubbed, the command logged, its stderr in
//! the error, killed with its workers when the backup is interrupted) and reaches the server through [`qrd_pg::connect::ChildConnection`] (the password in a
//! private password file, never argv).
//!
//! A database's dump and its row counts come from one snapshot: qrd opens a repeatable-read transaction,
//! exports its snapshot, counts every table in it, and hands the snapshot to `pg_dump --snapshot`, so the
//! manifest's counts are exactly what the archive holds even while the Qlik services write.

use std::path::Path;
use std::process::Command;

use qrd_pg::connect::ChildConnection;
use qrd_pgbin::{FindError, Finder, FoundTool, PgVersion, Tool, ToolError, run, scrubbed_command};

use crate::manifest::ArchiveFormat;

/// The tools of one backup or restore, found once.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_dump: FoundTool,
    pub pg_dumpall: FoundTool,
    pub pg_restore: FoundTool,
}

impl Tools {
    pub fn find(finder: &Finder, server: &PgVersion) -> Result<Tools, FindError> {
        Ok(Tools {
            pg_dump: finder.find(Tool::PgDump, server)?,
            pg_dumpall: finder.find(Tool::PgDumpall, server)?,
            pg_restore: finder.find(Tool::PgRestore, server)?,
        })
    }
}

fn tool(path: &Path, child: &ChildConnection) -> Command {
    let mut cmd = scrubbed_command(path);
    child.apply(&mut cmd);
    cmd
}

/// `pg_dumpall --globals-only` into `out`: roles with their attributes, verifiers, settings and
/// memberships, and tablespaces. `no_role_passwords`: without the verifiers (`--no-role-passwords`,
/// which reads `pg_roles` instead of `pg_authid`), for a role that may not read `pg_authid`.
pub async fn dump_globals(
    tools: &Tools,
    child: &ChildConnection,
    no_role_passwords: bool,
    out: &Path,
) -> Result<(), ToolError> {
    let mut cmd = tool(&tools.pg_dumpall.path, child);
    cmd.args(["--globals-only", "--no-password"]);
    if no_role_passwords {
        cmd.arg("--no-role-passwords");
    }
    cmd.arg("--file").arg(out);
    let what = if no_role_passwords {
        "dump the roles (pg_dumpall --globals-only --no-role-passwords)"
    } else {
        "dump the roles (pg_dumpall --globals-only)"
    };
    run(cmd, what).await.map(drop)
}

/// `pg_dump` of `child`'s database into `out` (a directory for [`ArchiveFormat::Directory`], which must not
/// exist yet, else a file), uncompressed (qrd compresses the whole bundle), in `snapshot` when given.
pub async fn dump_database(
    tools: &Tools,
    child: &ChildConnection,
    database: &str,
    format: ArchiveFormat,
    jobs: u32,
    snapshot: Option<&str>,
    out: &Path,
) -> Result<(), ToolError> {
    let mut cmd = tool(&tools.pg_dump.path, child);
    cmd.args(["--no-password", "--compress=0"]);
    match format {
        ArchiveFormat::Directory => cmd.args(["--format=directory", &format!("--jobs={}", jobs.max(1))]),
        ArchiveFormat::Tar => cmd.arg("--format=tar"),
    };
    if let Some(s) = snapshot {
        cmd.arg(format!("--snapshot={s}"));
    }
    // The database comes from PGDATABASE (set by the child connection), never `--dbname`: pg_dump reads a
    // --dbname holding `=` as a connection string, and a database may be named anything.
    cmd.arg("--file").arg(out);
    run(cmd, &format!("dump database {database:?} (pg_dump)")).await.map(drop)
}
