//! `qrd check`: a registry of checks over a server [`Inventory`], each yielding findings (`ok` / `warn` /
//! `fail` with a hint, or `skip` where the connection may not read what the check needs), and the report
//! with its stable JSON form (schema in the README).
//!
//! Checks are pure functions of a [`Context`]: the inventory is gathered once, so adding a check costs no
//! extra round trip unless it needs new facts, which then go into the inventory or the context.

mod checks;
mod report;
mod tls_checks;

pub use checks::{CHECKS, CheckDef};
pub use report::{Report, ServerSummary, Summary};

use qrd_pg::{Inventory, RepoSpec};
use qrd_pgbin::{FindError, FoundTool};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// The check could not read what it needs with this connection's rights (a managed server's admin
    /// reads neither `pg_authid` nor pg_hba.conf nor the server's files): not a failure, not a pass.
    Skip,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of `qrd check` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `database.QSR.owner`.
    pub id: String,
    pub status: Status,
    pub message: String,
    /// The next step; present for `skip`, `warn` and `fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub fn ok(id: impl Into<String>, message: impl Into<String>) -> Self {
        Self { id: id.into(), status: Status::Ok, message: message.into(), hint: None }
    }

    pub fn warn(id: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { id: id.into(), status: Status::Warn, message: message.into(), hint: Some(hint.into()) }
    }

    pub fn fail(id: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { id: id.into(), status: Status::Fail, message: message.into(), hint: Some(hint.into()) }
    }

    /// What the check could not read (`message` says what and why), and how to get it checked.
    pub fn skip(id: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { id: id.into(), status: Status::Skip, message: message.into(), hint: Some(hint.into()) }
    }
}

/// The client tools the product will need for this server (backups, replicas), as found on this machine.
#[derive(Debug, Default)]
pub struct ToolsFound {
    pub results: Vec<Result<FoundTool, FindError>>,
}

/// What the DBA says about the Qlik site (`qrd check --node … --nodes N --pool-size P`).
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// The Qlik nodes' addresses (or subnets as `addr/prefix` strings), for the pg_hba coverage check.
    pub nodes: Vec<String>,
    /// The nodes connect through a proxy (HAProxy in front of a Patroni cluster, `qrd ha`): the address
    /// the server sees their connections come from, checked instead of theirs.
    pub via: Option<String>,
    /// How many Qlik nodes use this repository (for max_connections); `None` when not given.
    pub node_count: Option<u32>,
    /// Each node's repository connection pool size (Qlik's default is 90).
    pub pool_size: u32,
    /// The backup directory's state (`--backup-dir`), when asked.
    pub backups: Option<Backups>,
    /// Replication as the server sees it (`qrd standby status`), when it could be read.
    pub replication: Option<qrd_replica::status::Status>,
}

/// A backup directory as `qrd check --backup-dir` sees it.
#[derive(Debug, Clone)]
pub struct Backups {
    pub dir: String,
    /// Reading the directory failed (the reason).
    pub unreadable: Option<String>,
    pub bundles: usize,
    /// The newest bundle that verifies, and its age in hours.
    pub newest_verified: Option<(String, f64)>,
    /// Newer bundles that are damaged.
    pub damaged: Vec<String>,
    /// Newer bundles that could not be checked here (no fitting pg_restore, no room or no right to extract
    /// them): neither good nor damaged as far as is known. The file, and why with the next step.
    pub not_checked: Vec<NotChecked>,
}

/// A bundle `qrd check --backup-dir` could not check.
#[derive(Debug, Clone)]
pub struct NotChecked {
    pub file: String,
    /// Why, in the words of the error.
    pub reason: String,
    pub hint: String,
}

/// Hours after which the newest verified bundle warns (a nightly job missed a night) and fails.
pub const BACKUP_WARN_HOURS: f64 = 26.0;
pub const BACKUP_FAIL_HOURS: f64 = 50.0;

/// A standby further behind than this (bytes of WAL, or seconds of replay) warns.
pub const LAG_WARN_BYTES: i64 = 64 * 1024 * 1024;
pub const LAG_WARN_SECONDS: f64 = 60.0;
/// An inactive slot holding more WAL than this warns (it grows until the disk is full).
pub const SLOT_WARN_BYTES: i64 = 1024 * 1024 * 1024;

/// Qlik's default repository connection pool per node.
pub const DEFAULT_POOL_SIZE: u32 = 90;

/// The guide's max_connections for `nodes` nodes: the pools plus 20 per node (110 per node by default).
pub fn guide_max_connections(nodes: u32, pool_size: u32) -> u32 {
    nodes * (pool_size + 20)
}

/// Everything checks may look at.
pub struct Context<'a> {
    pub inventory: &'a Inventory,
    pub spec: &'a RepoSpec,
    pub tools: &'a ToolsFound,
    pub site: &'a Site,
}

/// Runs every registered check.
pub fn run_all(ctx: &Context<'_>) -> Vec<Finding> {
    CHECKS.iter().flat_map(|c| (c.run)(ctx)).collect()
}
