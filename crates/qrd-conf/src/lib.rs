//! The two files a DBA edits by hand on a repository server, as lossless models: `postgresql.conf` (with
//! its includes and `postgresql.auto.conf`) and `pg_hba.conf`. Unchanged input renders back byte for byte;
//! edits touch only the lines they change, so comments and layout survive. [`mod@write`] puts a changed file in
//! place safely (backup copy, atomic replace, owner and mode kept, unified diff for `--dry-run`).
//!
//! No maintained crate parses either file losslessly, hence this one. Nothing here talks to a server:
//! facts from a server (roles, `pg_settings`) come in as plain data, so everything is unit-testable.

mod error;
pub mod hba;
pub mod pgconf;
pub mod write;

pub use error::ParseError;
