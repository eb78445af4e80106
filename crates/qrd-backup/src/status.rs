//! The bundles of a backup directory verified newest first until one verifies — the one loop behind `qrd
//! check --backup-dir` (monitoring) and `qrd backup prune` (retention) — and what each verification said:
//! verified, damaged (the bundle's own fault), or not checked (a check that could not be made here: no
//! fitting pg_restore, no room or no right for the scratch extraction). A bundle that could not be checked
//! is neither good nor damaged as far as anyone knows: prune keeps it, and monitoring does not call it
//! damaged.

use qrd_exit::UserError;
use std::path::{Path, PathBuf};

use qrd_pgbin::Finder;
use serde::ser::SerializeStruct;
use time::OffsetDateTime;

use crate::retention::{self, ListError, Listed, Listing};
use crate::verify::{VerifyError, VerifyReport};

/// What verifying one bundle said.
#[derive(Debug)]
pub enum Verdict {
    Verified,
    /// The bundle is wrong ([`VerifyError::is_damage`]).
    Damaged(VerifyError),
    /// It could not be checked here; nothing is known about the bundle.
    NotChecked(VerifyError),
}

impl Verdict {
    pub fn of(result: Result<VerifyReport, VerifyError>) -> Verdict {
        match result {
            Ok(_) => Verdict::Verified,
            Err(e) if e.is_damage() => Verdict::Damaged(e),
            Err(e) => Verdict::NotChecked(e),
        }
    }

    /// Why it did not verify.
    pub fn error(&self) -> Option<&VerifyError> {
        match self {
            Verdict::Verified => None,
            Verdict::Damaged(e) | Verdict::NotChecked(e) => Some(e),
        }
    }

    /// `verified`, `damaged` or `not_checked`, as `--json` says it.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Damaged(_) => "damaged",
            Verdict::NotChecked(_) => "not_checked",
        }
    }
}

/// One bundle verified.
#[derive(Debug)]
pub struct Checked {
    pub file_name: String,
    pub path: PathBuf,
    pub created_utc: OffsetDateTime,
    pub verdict: Verdict,
}

impl serde::Serialize for Checked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Checked", 5)?;
        st.serialize_field("file_name", &self.file_name)?;
        let created = self.created_utc.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        st.serialize_field("created_utc", &created)?;
        st.serialize_field("verdict", self.verdict.name())?;
        st.serialize_field("reason", &self.verdict.error().map(ToString::to_string))?;
        st.serialize_field("hint", &self.verdict.error().and_then(UserError::hint))?;
        st.end()
    }
}

/// A backup directory's bundles and what verifying them newest first said.
#[derive(Debug, serde::Serialize)]
pub struct Status {
    pub dir: PathBuf,
    pub listing: Listing,
    /// The bundles verified, newest first: the newest that verifies is the last, unless none does.
    pub checked: Vec<Checked>,
}

impl Status {
    /// The newest bundle that verifies (checksums and pg_restore --list).
    pub fn newest_verified(&self) -> Option<&Checked> {
        self.checked.iter().find(|c| matches!(c.verdict, Verdict::Verified))
    }

    /// Bundles newer than the newest verified one that are damaged, newest first.
    pub fn damaged(&self) -> impl Iterator<Item = &Checked> {
        self.checked.iter().filter(|c| matches!(c.verdict, Verdict::Damaged(_)))
    }

    /// Bundles newer than the newest verified one that could not be checked here, newest first.
    pub fn not_checked(&self) -> impl Iterator<Item = &Checked> {
        self.checked.iter().filter(|c| matches!(c.verdict, Verdict::NotChecked(_)))
    }

    /// What verifying the bundle called `file_name` said; `None` when it was not verified (it is older than
    /// the newest that verifies).
    pub fn verdict_of(&self, file_name: &str) -> Option<&Verdict> {
        self.checked.iter().find(|c| c.file_name == file_name).map(|c| &c.verdict)
    }
}

/// Verifies the bundles of `dir`, newest first, until one verifies.
pub async fn status(dir: &Path, finder: &Finder) -> Result<Status, ListError> {
    let listing = retention::list(dir)?;
    let mut checked = Vec::new();
    for b in listing.bundles.iter().rev() {
        let verdict = Verdict::of(crate::verify::verify(&b.path, finder).await);
        match &verdict {
            Verdict::Verified => {}
            Verdict::Damaged(e) => tracing::warn!("{} is damaged: {e}", b.file_name),
            Verdict::NotChecked(e) => tracing::warn!("{} could not be checked: {e}", b.file_name),
        }
        let verified = matches!(verdict, Verdict::Verified);
        checked.push(checked_of(b, verdict));
        // Interrupted (Ctrl-C, SIGTERM): the bundles not looked at stay untried, so nothing counts as
        // verified and a prune deletes nothing.
        if verified || qrd_pgbin::interrupt::received().is_some() {
            break;
        }
    }
    Ok(Status { dir: dir.to_owned(), listing, checked })
}

fn checked_of(b: &Listed, verdict: Verdict) -> Checked {
    Checked { file_name: b.file_name.clone(), path: b.path.clone(), created_utc: b.summary.created_utc, verdict }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::bundle::{Writer, WriterOptions};
    use crate::manifest::{Manifest, Source};
    use crate::retention::{self, KeepReason, Policy, PruneError};

    /// Bundles of a PostgreSQL 99 server, with no pg_restore to be found: not checked, never damaged; the
    /// loop goes on to the oldest; a prune keeps every one, deletes nothing and fails naming them.
    #[tokio::test]
    async fn bundles_without_a_fitting_pg_restore_are_not_checked_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        for (name, created) in [("a", datetime!(2026-11-22 02:00 UTC)), ("b", datetime!(2026-11-23 02:00 UTC))] {
            let mut w = Writer::create(dir.path(), name, WriterOptions { level: 1, threads: 0 }).unwrap();
            w.add_bytes("globals.sql", b"-- roles\n".to_vec()).unwrap();
            let source = Source {
                host: "qlik-central".into(),
                port: 4432,
                server_version: Some("99.1".into()),
                server_major: Some(99),
                system_identifier: None,
                data_directory: None,
            };
            w.finish(Manifest::new(created, source)).unwrap();
        }
        let finder = Finder::in_dirs(Vec::new());
        let st = status(dir.path(), &finder).await.unwrap();
        let seen: Vec<(&str, &str)> = st.checked.iter().map(|c| (c.file_name.as_str(), c.verdict.name())).collect();
        assert_eq!(seen, [("b.tar.zst", "not_checked"), ("a.tar.zst", "not_checked")]);
        assert!(st.newest_verified().is_none());
        assert_eq!(st.damaged().count(), 0);
        let reason = st.checked[0].verdict.error().unwrap().to_string();
        assert!(reason.starts_with("no usable pg_restore for the server's PostgreSQL 99"), "{reason}");

        let policy = Policy { keep_last: 1, keep_daily: 0, keep_weekly: 0 };
        let mut prune = retention::plan(dir.path(), &finder, policy, datetime!(2026-11-23 12:00 UTC)).await.unwrap();
        assert!(prune.plan.delete.is_empty(), "{:#?}", prune.plan);
        assert!(prune.plan.keep.iter().all(|k| k.reasons.contains(&KeepReason::NotChecked)), "{:#?}", prune.plan);
        prune.apply().unwrap();
        assert!(prune.deleted.is_empty());
        assert!(dir.path().join("a.tar.zst").exists() && dir.path().join("b.tar.zst").exists());
        let json = serde_json::to_value(&prune).unwrap();
        assert_eq!(json["checked"][0]["verdict"], "not_checked", "{json}");
        assert!(json["checked"][0]["hint"].as_str().unwrap().contains("PostgreSQL 99 client tools"), "{json}");
        match prune.finish() {
            Err(PruneError::NotChecked { kept, source }) => {
                assert_eq!(kept, ["b.tar.zst", "a.tar.zst"]);
                assert!(matches!(source, VerifyError::Tools(_)), "{source:?}");
            }
            other => panic!("expected NotChecked, got {other:?}"),
        }
    }
}
