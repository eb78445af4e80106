//! The report: findings plus a summary, rendered for humans or as JSON (`schema_version` 1).

use serde::Serialize;

use crate::{Finding, Status};

#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    /// `127.0.0.1:4432` or `socket /path/.s.PGSQL.4432`.
    pub address: String,
    pub user: String,
    pub version: String,
    pub major: u32,
    pub supported: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    /// Checks that could not read what they need (a field added within schema_version 1).
    pub skip: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Bumped only on incompatible changes; new checks and new fields are not incompatible. The status
    /// `skip` came within version 1: it is no failure, and a reader that does not know it should count it
    /// as a warning (README, "qrd check --json").
    pub schema_version: u32,
    pub server: ServerSummary,
    pub summary: Summary,
    pub checks: Vec<Finding>,
}

impl Report {
    pub fn new(server: ServerSummary, checks: Vec<Finding>) -> Self {
        let mut summary = Summary::default();
        for f in &checks {
            match f.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skip => summary.skip += 1,
            }
        }
        Self { schema_version: 1, server, summary, checks }
    }

    pub fn passed(&self) -> bool {
        self.summary.fail == 0
    }
}
