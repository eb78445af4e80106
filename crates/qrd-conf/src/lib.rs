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

use serde::Serialize;

/// Which include directive a line is: postgresql.conf has all three, pg_hba.conf since PostgreSQL 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncludeKind {
    /// `include 'file'`: the file must exist.
    Include,
    /// `include_if_exists 'file'`: a missing file is skipped (the server logs it).
    IncludeIfExists,
    /// `include_dir 'dir'`: every `*.conf` file in the directory, in byte order of the names.
    IncludeDir,
}

impl IncludeKind {
    /// The directive's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            IncludeKind::Include => "include",
            IncludeKind::IncludeIfExists => "include_if_exists",
            IncludeKind::IncludeDir => "include_dir",
        }
    }

    /// The directive named by `key` exactly (callers fold case where their file's server does).
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        match key {
            "include" => Some(IncludeKind::Include),
            "include_if_exists" => Some(IncludeKind::IncludeIfExists),
            "include_dir" => Some(IncludeKind::IncludeDir),
            _ => None,
        }
    }
}
