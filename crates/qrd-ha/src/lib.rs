//! High availability for the Qlik repository on Patroni + etcd, behind HAProxy.
//!
//! Patroni is the engine (leader election in etcd, promotion, pg_rewind, replica cloning); what qrd adds
//! is the Qlik side: the repository role and the four databases with the guide's grants made at
//! bootstrap, pg_hba for the Qlik nodes, TLS, SCRAM, max_connections sized by nodes, the one Host the
//! nodes' connection strings name, and checks that prove it. Each module is one command's work:
//!
//! - [`spec`]: what a cluster is made of and where each file lives;
//! - [`render`]: every file of the cluster (`patroni.yml`, credentials, bootstrap SQL, etcd, HAProxy …);
//! - [`init`]: `qrd ha init`, those files planned (diffs) and written (atomic, owner and mode, backups);
//! - [`adopt`]: `qrd ha adopt`, an existing repository (a bundle or a standalone server) moved into the
//!   leader with qrd's backup and restore, and waited for on every replica;
//! - [`api`]: Patroni's REST API and HAProxy's statistics;
//! - [`status`]: `qrd ha status`, the cluster as Patroni, etcd and HAProxy report it;
//! - [`setparam`]: `qrd ha set-param`, a shared setting changed in the DCS and the restarts it needs;
//! - [`switchover`]: `qrd ha switchover`, a planned move of the leader, waited for until writable;
//! - [`check`]: `qrd ha check`, findings with `qrd check`'s levels.

pub mod adopt;
pub mod api;
pub mod check;
pub mod envfile;
pub mod error;
pub mod init;
pub mod render;
pub mod setparam;
pub mod spec;
pub mod status;
pub mod switchover;

pub use error::HaError;
