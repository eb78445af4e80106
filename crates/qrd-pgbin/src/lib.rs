//! Finding PostgreSQL tools (pg_dump, pg_restore, pg_basebackup, pg_rewind, psql, initdb, pg_ctl …) whose
//! major version fits a given server, and running them: without leaking secrets or the caller's `PG*`
//! environment, as the right OS user with its groups, with failures that quote the tool's own output, and
//! with commands printed so they can be pasted into a shell. Shared by the `qrd` product and the
//! `testcontainers` harness, so both pick and run tools the same way.

mod find;
mod identity;
mod run;
mod shell;
mod version;

pub use find::{Candidate, FindError, Finder, FoundTool, ProbeError, Tool};
pub use identity::{Identity, IdentityError};
pub use run::{
    Passfile, ToolError, conninfo_value, describe_output, describe_status, indented_output, passfile_field,
    passfile_line, run, scrubbed_command,
};
pub use shell::{display_command, shell_quote};
pub use version::{PgVersion, VersionError};
