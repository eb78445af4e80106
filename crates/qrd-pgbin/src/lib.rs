//! Finding PostgreSQL tools (pg_dump, pg_restore, pg_basebackup, pg_rewind, psql, initdb, pg_ctl …) whose
//! major version fits a given server, and running them: without leaking secrets or the caller's `PG*`
//! environment, as the right OS user with its groups, with failures that quote the tool's own output, and
//! with commands printed so they can be pasted into a shell; through one runner that times them out and
//! kills them with their process group when qrd is interrupted ([`run`]), and one waiter for conditions
//! that take a while ([`poll_until`]). Shared by the `qrd` product and the `testcontainers` harness, so
//! both pick, run and wait the same way.

mod find;
mod identity;
pub mod interrupt;
mod run;
mod runner;
mod shell;
mod version;
mod wait;

pub use find::{Candidate, FindError, Finder, FoundTool, ProbeError, Tool};
pub use identity::{Identity, IdentityError};
pub use qrd_exit::{ExitStatus, UserError};
pub use run::{
    Passfile, ToolError, conninfo_value, describe_output, describe_status, indented_output, passfile_field,
    passfile_line, scrubbed_command,
};
pub use runner::{Limits, run, run_blocking, run_with};
pub use shell::{display_command, shell_quote};
pub use version::{PgVersion, VersionError};
pub use wait::{Check, TimedOut, WaitError, poll_until, poll_until_blocking};
