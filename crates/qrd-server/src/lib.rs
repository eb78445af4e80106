//! The PostgreSQL server qrd runs next to: where its data directory and configuration files are and who
//! owns them, controlling it (pg_ctl or the service manager that runs it), writing its configuration files
//! so that a broken file is never left loaded, undoing a change that fails part-way, proving a change with
//! real connections, and saving a set of files with checksums to put back later (the SHA-256 helpers in
//! [`checksum`] serve backup bundles too).
//!
//! Commands that touch the server's files (`conf`, `hba`, `scram`, `ssl`, and later backups and standbys)
//! build on this crate instead of each keeping its own copy. Progress and warnings are `tracing` events
//! (`info!`, `warn!`); the command line decides how they are shown.

pub mod checked;
pub mod checksum;
pub mod hba;
mod interfaces;
pub mod journal;
pub mod local;
pub mod locate;
pub mod pgctl;
pub mod proof;
pub mod saved;
pub mod service;
pub mod settings;

pub use checked::{CheckedWrite, WriteError, WriteOptions, Written, apply_in_order};
pub use interfaces::interfaces;
pub use journal::{Journal, UndoProblem};
pub use local::{Layout, LocalError, LocalServer, LocalSocket, Owner};
pub use locate::{FileChoice, LocateError, Located, locate};
pub use pgctl::{PgCtl, PgCtlError, StopMode};
pub use saved::{SavedError, SavedFile, SavedSet};
pub use service::{RestartFailure, Service, ServiceError};

/// The two configuration files qrd edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// postgresql.conf and the files it includes (and postgresql.auto.conf).
    Conf,
    /// pg_hba.conf.
    Hba,
}

impl FileKind {
    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Conf => "postgresql.conf",
            FileKind::Hba => "pg_hba.conf",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}
