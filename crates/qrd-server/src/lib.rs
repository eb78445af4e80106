//! The PostgreSQL server qrd runs next to: where its data directory and configuration files are and who
//! owns them, controlling it (pg_ctl or the service manager that runs it), writing its configuration files
//! so that a broken file is never left loaded, undoing a change that fails part-way, proving a change with
//! real connections, and saving a set of files with checksums to put back later.
//!
//! Commands that touch the server's files (`conf`, `hba`, `scram`, `ssl`, and later backups and standbys)
//! build on this crate instead of each keeping its own copy.

mod interfaces;
pub mod pgctl;
pub mod service;

pub use interfaces::interfaces;
pub use pgctl::{PgCtl, PgCtlError, StopMode};
pub use service::{RestartFailure, Service, ServiceError};
