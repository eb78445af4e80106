//! Streaming-replica standbys of the Qlik repository database, done right for each PostgreSQL major.
//!
//! The guide's "Database replication and failover" sets up asynchronous streaming replication by hand, and
//! parts of it no longer work: `recovery.conf` is gone since 12 (`standby.signal` and `primary_conninfo`
//! in the configuration instead), `wal_keep_segments` since 13 (`wal_keep_size`), `promote_trigger_file`
//! since 16 (`pg_promote()`). Each module is one command's plan and apply:
//!
//! - [`prepare`]: `qrd standby prepare-primary`, the primary's settings, replication role, pg_hba rules
//!   and slots;
//! - [`clone`]: `qrd standby clone`, a standby's data directory from the primary, streaming;
//! - [`status`]: `qrd standby status`, replication as the primary or the standby sees it;
//! - [`failover`]: `qrd failover`, fencing, promotion, and the Qlik nodes' next steps;
//! - [`rejoin`]: `qrd standby rejoin`, a failed old primary rewound (or re-cloned) into a standby;
//! - [`switchover`]: `qrd switchover`, the planned move without losing a transaction.
//!
//! Shared by them: [`configure`], the configuration that makes a data directory a standby, per major;
//! [`local`], the server of a data directory on this machine (its layout, service, socket and streaming
//! wait); [`control`], a stopped server's pg_control through `pg_controldata`.

pub mod clone;
pub mod configure;
pub mod control;
pub mod error;
pub mod failover;
pub mod local;
pub mod prepare;
pub mod rejoin;
pub mod status;
pub mod switchover;

pub use error::ReplicaError;
