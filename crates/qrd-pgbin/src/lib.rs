//! Finding PostgreSQL tools (pg_dump, pg_restore, pg_basebackup, pg_rewind, psql, initdb, pg_ctl …) whose
//! major version fits a given server, and running them without leaking secrets or the caller's `PG*`
//! environment. Shared by the `qrd` product and the `testcontainers` harness, so both pick tools the same way.

mod find;
mod run;
mod version;

pub use find::{Candidate, FindError, Finder, FoundTool, Tool};
pub use run::{Passfile, scrubbed_command};
pub use version::{PgVersion, VersionError};
