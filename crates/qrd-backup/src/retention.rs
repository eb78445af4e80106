//! Which bundles a backup directory holds ([`list`]), and which of them a retention policy lets go
//! ([`plan_prune`]: pure logic over data, so `--dry-run` prints exactly the plan that would be carried out;
//! [`plan`] verifies the directory's bundles through [`crate::status`] first, [`Prune::apply`] deletes).
//!
//! The policy is grandfather-father-son: the newest N bundles, the newest of each of the last D calendar
//! days, the newest of each of the last W ISO weeks (days and weeks in the UTC offset of the `now` given,
//! today and this week included). Whatever the policy says, the newest bundle known to verify is kept,
//! and when none is known to verify nothing is deleted: pruning must never leave a directory without a
//! good backup because the newest ones happen to be damaged. Bundles are verified newest first until one
//! verifies; a damaged one fills no slot of the policy and is deleted, one that could not be checked here
//! (no pg_restore of its major, no room for the scratch extraction, a permission) fills no slot either
//! but is kept, and the prune then fails ([`Prune::finish`]) so that a nightly job's monitoring sees it: a
//! prune whose PATH lags a server upgrade must not delete every new backup.

use qrd_exit::{ExitStatus, UserError};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::bundle::{ReadError, is_bundle_file_name, is_partial_file_name, read_manifest};
use crate::manifest::Manifest;
use crate::status::{self, Checked, Verdict};
use crate::verify::VerifyError;

/// A bundle found in a directory, with its manifest's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub path: PathBuf,
    /// Its file name (`NAME.tar.zst`).
    pub file_name: String,
    /// Size of the file.
    pub bytes: u64,
    pub summary: Summary,
}

/// What `qrd backup list` shows of a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(with = "time::serde::rfc3339")]
    pub created_utc: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_utc: Option<OffsetDateTime>,
    pub qrd_version: String,
    pub host: String,
    pub port: u16,
    pub server_version: Option<String>,
    pub databases: Vec<String>,
    /// Bytes of content, uncompressed (the members' sizes).
    pub content_bytes: u64,
}

impl Summary {
    pub fn of(m: &Manifest) -> Summary {
        Summary {
            created_utc: m.created_utc,
            finished_utc: m.finished_utc,
            qrd_version: m.qrd_version.clone(),
            host: m.source.host.clone(),
            port: m.source.port,
            server_version: m.source.server_version.clone(),
            databases: m.databases.iter().map(|d| d.name.clone()).collect(),
            content_bytes: m.members.iter().map(|x| x.size).sum(),
        }
    }
}

/// A file with a bundle's name whose manifest cannot be read.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub path: PathBuf,
    pub reason: String,
}

/// A backup directory's contents.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listing {
    /// Bundles, oldest first.
    pub bundles: Vec<Listed>,
    /// Files named like bundles whose manifest is unreadable (damaged, or not qrd's).
    pub unreadable: Vec<Unreadable>,
    /// Partial files of runs that are still writing, or crashed before they could remove them. Never
    /// bundles; with the directory's lock held, every one is a crashed run's leftover.
    pub partials: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to read the backup directory {}: {source}", dir.display())]
pub struct ListError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl UserError for ListError {
    fn exit_status(&self) -> ExitStatus {
        // The directory given cannot be listed.
        ExitStatus::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl ListError {
    fn hint_text(&self) -> String {
        "check that the directory exists and is readable".into()
    }
}

/// The bundles in `dir` (by their manifests, the first member of each: cheap), oldest first.
pub fn list(dir: &Path) -> Result<Listing, ListError> {
    let err = |source| ListError { dir: dir.to_owned(), source };
    let mut out = Listing::default();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if !entry.file_type().map_err(err)?.is_file() {
            continue;
        }
        if is_partial_file_name(&name) {
            out.partials.push(entry.path());
        } else if is_bundle_file_name(&name) {
            names.push((name, entry.path()));
        }
    }
    for (file_name, path) in names {
        let bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match read_manifest(&path) {
            Ok(m) => out.bundles.push(Listed { path, file_name, bytes, summary: Summary::of(&m) }),
            Err(e) => {
                let reason = match &e {
                    ReadError::Damaged { problems, .. } => {
                        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                    }
                    other => other.to_string(),
                };
                out.unreadable.push(Unreadable { path, reason });
            }
        }
    }
    out.bundles.sort_by(|a, b| (a.summary.created_utc, &a.file_name).cmp(&(b.summary.created_utc, &b.file_name)));
    out.partials.sort();
    out.unreadable.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A bundle as the retention policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub file_name: String,
    pub created_utc: OffsetDateTime,
    pub known: Known,
}

/// What is known of a bundle: bundles are verified newest first until one verifies, so the older ones are
/// [`Known::Untried`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Untried,
    Verified,
    Damaged,
    /// It could not be checked here (see [`crate::status`]): kept, and fills no slot.
    NotChecked,
}

impl Known {
    pub fn of(verdict: Option<&Verdict>) -> Known {
        match verdict {
            None => Known::Untried,
            Some(Verdict::Verified) => Known::Verified,
            Some(Verdict::Damaged(_)) => Known::Damaged,
            Some(Verdict::NotChecked(_)) => Known::NotChecked,
        }
    }
}

impl From<&Listed> for Candidate {
    fn from(l: &Listed) -> Candidate {
        Candidate { file_name: l.file_name.clone(), created_utc: l.summary.created_utc, known: Known::Untried }
    }
}

/// How many bundles to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Policy {
    /// The newest N.
    pub keep_last: usize,
    /// The newest of each of the last D calendar days (today included).
    pub keep_daily: u32,
    /// The newest of each of the last W ISO weeks (this week included).
    pub keep_weekly: u32,
}

/// Why a bundle stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum KeepReason {
    /// Among the newest `keep_last`.
    Last { rank: usize },
    /// The newest of this day.
    Daily { day: String },
    /// The newest of this ISO week (`2026-W48`).
    Weekly { week: String },
    /// The newest bundle known to verify: never deleted.
    NewestVerified,
    /// Newer than `now` (a clock was wrong somewhere): not placed, not deleted.
    FromTheFuture,
    /// No bundle is known to verify, so nothing is deleted.
    NothingVerified,
    /// It could not be checked here, so nothing is known about it: kept until it can be.
    NotChecked,
}

/// Why a bundle goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReason {
    /// No rule of the policy keeps it.
    OutsidePolicy,
    /// Known damaged, so it fills no slot of the policy.
    Damaged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Keep {
    pub file_name: String,
    pub reasons: Vec<KeepReason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delete {
    pub file_name: String,
    pub reason: DeleteReason,
}

/// What a prune keeps and deletes, newest first in both lists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PrunePlan {
    pub keep: Vec<Keep>,
    pub delete: Vec<Delete>,
}

/// The plan for `bundles` under `policy` at `now` (see the module documentation). Damaged bundles and
/// those that could not be checked fill no slot, so a damaged newest bundle does not push out the good one
/// of its day; the damaged ones go, the others stay.
pub fn plan_prune(bundles: &[Candidate], policy: Policy, now: OffsetDateTime) -> PrunePlan {
    let mut order: Vec<&Candidate> = bundles.iter().collect();
    order.sort_by(|a, b| (b.created_utc, &b.file_name).cmp(&(a.created_utc, &a.file_name)));
    let offset = now.offset();
    let today = now.date();
    let this_monday = monday(today);
    let newest_verified = order.iter().position(|c| c.known == Known::Verified);

    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); order.len()];
    let (mut days, mut weeks) = (BTreeSet::new(), BTreeSet::new());
    let mut rank = 0;
    for (i, c) in order.iter().enumerate() {
        if c.created_utc > now {
            reasons[i].push(KeepReason::FromTheFuture);
            continue;
        }
        match c.known {
            Known::Damaged => continue,
            Known::NotChecked => {
                reasons[i].push(KeepReason::NotChecked);
                continue;
            }
            Known::Untried | Known::Verified => {}
        }
        rank += 1;
        if rank <= policy.keep_last {
            reasons[i].push(KeepReason::Last { rank });
        }
        let day = c.created_utc.to_offset(offset).date();
        if (today - day).whole_days() < i64::from(policy.keep_daily) && days.insert(day) {
            reasons[i].push(KeepReason::Daily { day: day.to_string() });
        }
        let (year, week, _) = day.to_iso_week_date();
        if (this_monday - monday(day)).whole_weeks() < i64::from(policy.keep_weekly) && weeks.insert((year, week)) {
            reasons[i].push(KeepReason::Weekly { week: format!("{year}-W{week:02}") });
        }
    }
    match newest_verified {
        Some(i) => reasons[i].push(KeepReason::NewestVerified),
        None => reasons.iter_mut().for_each(|r| r.push(KeepReason::NothingVerified)),
    }

    let mut plan = PrunePlan::default();
    for (c, reasons) in order.into_iter().zip(reasons) {
        let file_name = c.file_name.clone();
        if !reasons.is_empty() {
            plan.keep.push(Keep { file_name, reasons });
        } else {
            let reason = if c.known == Known::Damaged { DeleteReason::Damaged } else { DeleteReason::OutsidePolicy };
            plan.delete.push(Delete { file_name, reason });
        }
    }
    plan
}

/// A prune of one directory: what verifying its bundles newest first said, the plan, and once applied
/// what was deleted.
#[derive(Debug, Serialize)]
pub struct Prune {
    pub dir: PathBuf,
    pub policy: Policy,
    /// The bundles verified, newest first (see [`crate::status`]).
    pub checked: Vec<Checked>,
    pub plan: PrunePlan,
    /// The files deleted by [`Prune::apply`], in order.
    pub deleted: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(
        "failed to check {} bundle(s), so they are kept: {}; the newest could not be checked because: {source}",
        kept.len(),
        kept.join(", ")
    )]
    NotChecked {
        /// The bundles that could not be checked, newest first.
        kept: Vec<String>,
        /// Why the newest of them could not be.
        #[source]
        source: VerifyError,
    },
    #[error("failed to delete {}: {source}", path.display())]
    Delete {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl UserError for PruneError {
    fn exit_status(&self) -> ExitStatus {
        // A bundle that could not be checked was kept, or one could not be deleted: the prune did not do all
        // its work.
        ExitStatus::Failed
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl PruneError {
    fn hint_text(&self) -> String {
        match self {
            PruneError::NotChecked { source, .. } => format!(
                "{}; then prune again (bundles that could not be checked are never deleted, and fill no slot of the \
                 policy; `qrd backup verify BUNDLE` checks one)",
                source.hint().unwrap_or_default()
            ),
            PruneError::Delete { .. } => {
                "check the directory's permissions; the bundles deleted before it are named above".into()
            }
        }
    }
}

/// Verifies the bundles of `dir` newest first until one verifies ([`status::status`]), and plans what
/// `policy` deletes at `now`. Deletes nothing; hold the directory's lock ([`crate::lock::DirLock`]) from
/// here to [`Prune::apply`].
pub async fn plan(
    dir: &Path,
    finder: &qrd_pgbin::Finder,
    policy: Policy,
    now: OffsetDateTime,
) -> Result<Prune, ListError> {
    let st = status::status(dir, finder).await?;
    let candidates: Vec<Candidate> = st
        .listing
        .bundles
        .iter()
        .map(|b| Candidate { known: Known::of(st.verdict_of(&b.file_name)), ..Candidate::from(b) })
        .collect();
    let plan = plan_prune(&candidates, policy, now);
    Ok(Prune { dir: dir.to_owned(), policy, checked: st.checked, plan, deleted: Vec::new() })
}

impl Prune {
    /// Deletes the plan's bundles in order, stopping at the first that cannot be deleted.
    pub fn apply(&mut self) -> Result<(), PruneError> {
        for d in &self.plan.delete {
            let path = self.dir.join(&d.file_name);
            std::fs::remove_file(&path).map_err(|source| PruneError::Delete { path: path.clone(), source })?;
            tracing::info!("deleted {} ({})", d.file_name, d.reason.describe());
            self.deleted.push(d.file_name.clone());
        }
        Ok(())
    }

    /// The bundles that could not be checked, newest first.
    pub fn not_checked(&self) -> impl Iterator<Item = &Checked> {
        self.checked.iter().filter(|c| matches!(c.verdict, Verdict::NotChecked(_)))
    }

    /// The prune's outcome once reported: an error when a bundle could not be checked (it was kept), so
    /// that the run does not pass for a full success.
    pub fn finish(self) -> Result<(), PruneError> {
        let mut kept = Vec::new();
        let mut newest = None;
        for c in self.checked {
            if let Verdict::NotChecked(e) = c.verdict {
                kept.push(c.file_name);
                newest.get_or_insert(e);
            }
        }
        match newest {
            Some(source) => Err(PruneError::NotChecked { kept, source }),
            None => Ok(()),
        }
    }
}

impl DeleteReason {
    /// In a few words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            DeleteReason::OutsidePolicy => "outside the policy",
            DeleteReason::Damaged => "damaged",
        }
    }
}

fn monday(d: Date) -> Date {
    d - time::Duration::days(i64::from(d.weekday().number_days_from_monday()))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use time::macros::datetime;

    use super::*;
    use crate::bundle::{Writer, WriterOptions};
    use crate::manifest::Source;

    fn source() -> Source {
        Source {
            host: "qlik-central".into(),
            port: 4432,
            server_version: None,
            server_major: None,
            system_identifier: None,
            data_directory: None,
        }
    }

    #[test]
    fn list_reads_bundles_by_manifest_oldest_first_and_sets_partials_and_strangers_apart() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions { level: 1, threads: 0 };
        for (name, created) in
            [("b-newer", datetime!(2026-11-23 02:00 UTC)), ("a-older", datetime!(2026-11-22 02:00 UTC))]
        {
            let mut w = Writer::create(dir.path(), name, opts).unwrap();
            w.add_bytes("globals.sql", b"-- roles\n".to_vec()).unwrap();
            w.finish(Manifest::new(created, source())).unwrap();
        }
        let running = Writer::create(dir.path(), "c-running", opts).unwrap();
        fs::write(dir.path().join("junk.tar.zst"), b"not a bundle").unwrap();
        fs::write(dir.path().join("notes.txt"), b"").unwrap();
        fs::create_dir(dir.path().join("d.tar.zst")).unwrap();

        let l = list(dir.path()).unwrap();
        let names: Vec<&str> = l.bundles.iter().map(|b| b.file_name.as_str()).collect();
        assert_eq!(names, ["a-older.tar.zst", "b-newer.tar.zst"]);
        assert_eq!(l.bundles[0].summary.created_utc, datetime!(2026-11-22 02:00 UTC));
        assert_eq!(l.bundles[0].summary.host, "qlik-central");
        assert_eq!(l.bundles[0].summary.content_bytes, 9);
        assert!(l.bundles[0].bytes > 0);
        assert_eq!(l.partials, [running.partial_path().to_owned()]);
        assert_eq!(l.unreadable.len(), 1);
        assert!(l.unreadable[0].path.ends_with("junk.tar.zst"), "{:?}", l.unreadable);
        drop(running);
        assert!(list(dir.path()).unwrap().partials.is_empty());
        let missing = dir.path().join("missing");
        let e = list(&missing).unwrap_err();
        assert_eq!((e.dir.as_path(), e.source.kind()), (missing.as_path(), std::io::ErrorKind::NotFound));
    }

    const U: Known = Known::Untried;
    const V: Known = Known::Verified;
    const D: Known = Known::Damaged;
    const N: Known = Known::NotChecked;

    fn c(name: &str, created_utc: OffsetDateTime, known: Known) -> Candidate {
        Candidate { file_name: name.into(), created_utc, known }
    }

    /// now: Monday 2026-11-23 12:00 UTC, ISO week 2026-W48.
    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    struct Case {
        what: &'static str,
        bundles: Vec<Candidate>,
        policy: Policy,
        now: OffsetDateTime,
        keep: &'static [&'static str],
        delete: &'static [(&'static str, DeleteReason)],
    }

    fn policy(keep_last: usize, keep_daily: u32, keep_weekly: u32) -> Policy {
        Policy { keep_last, keep_daily, keep_weekly }
    }

    #[test]
    fn prune_plans() {
        use DeleteReason::{Damaged, OutsidePolicy};
        let cases = [
            Case {
                what: "the newest N",
                bundles: (0..5)
                    .map(|h| c(&format!("h{h}"), NOW - time::Duration::hours(h), if h == 0 { V } else { U }))
                    .collect(),
                policy: policy(2, 0, 0),
                now: NOW,
                keep: &["h0", "h1"],
                delete: &[("h2", OutsidePolicy), ("h3", OutsidePolicy), ("h4", OutsidePolicy)],
            },
            Case {
                what: "the newest verified bundle stays whatever the policy; damaged ones fill no slot",
                bundles: vec![
                    c("a", datetime!(2026-11-23 04:00 UTC), D),
                    c("b", datetime!(2026-11-23 03:00 UTC), U),
                    c("c", datetime!(2026-11-23 02:00 UTC), V),
                    c("d", datetime!(2026-11-23 01:00 UTC), U),
                ],
                policy: policy(1, 0, 0),
                now: NOW,
                keep: &["b", "c"],
                delete: &[("a", Damaged), ("d", OutsidePolicy)],
            },
            Case {
                what: "bundles that could not be checked stay and fill no slot; a damaged one still goes",
                bundles: vec![
                    c("e", datetime!(2026-11-23 05:00 UTC), D),
                    c("d", datetime!(2026-11-23 04:00 UTC), N),
                    c("c", datetime!(2026-11-23 03:00 UTC), N),
                    c("b", datetime!(2026-11-23 02:00 UTC), V),
                    c("a", datetime!(2026-11-23 01:00 UTC), U),
                    c("z", datetime!(2026-11-23 00:30 UTC), U),
                ],
                policy: policy(2, 0, 0),
                now: NOW,
                keep: &["d", "c", "b", "a"],
                delete: &[("e", Damaged), ("z", OutsidePolicy)],
            },
            Case {
                what: "none could be checked: nothing is deleted",
                bundles: vec![c("b", datetime!(2026-11-23 02:00 UTC), N), c("a", datetime!(2026-11-22 02:00 UTC), N)],
                policy: policy(1, 0, 0),
                now: NOW,
                keep: &["b", "a"],
                delete: &[],
            },
            Case {
                what: "nothing known to verify: nothing is deleted",
                bundles: vec![
                    c("a", datetime!(2026-11-23 04:00 UTC), U),
                    c("b", datetime!(2026-11-20 04:00 UTC), D),
                    c("c", datetime!(2026-10-01 04:00 UTC), U),
                ],
                policy: policy(1, 0, 0),
                now: NOW,
                keep: &["a", "b", "c"],
                delete: &[],
            },
            Case {
                what: "the newest of each of the last D calendar days, today included",
                bundles: (0..10)
                    .map(|i| c(&format!("n{i}"), datetime!(2026-11-23 11:00 UTC) - time::Duration::hours(12 * i), V))
                    .collect(),
                // n0 11:00 today, n1 23:00 the 22nd, n2 11:00 the 22nd, n3 23:00 the 21st, …
                policy: policy(0, 3, 0),
                now: NOW,
                keep: &["n0", "n1", "n3"],
                delete: &[
                    ("n2", OutsidePolicy),
                    ("n4", OutsidePolicy),
                    ("n5", OutsidePolicy),
                    ("n6", OutsidePolicy),
                    ("n7", OutsidePolicy),
                    ("n8", OutsidePolicy),
                    ("n9", OutsidePolicy),
                ],
            },
            Case {
                what: "the newest of each of the last W ISO weeks, this one included",
                bundles: (0..15)
                    .map(|d| c(&format!("d{d}"), NOW - time::Duration::days(d), if d == 3 { V } else { U }))
                    .collect(),
                // d0 Mon 23rd (W48); d1 Sun 22nd … d7 Mon 16th (W47); d8 Sun 15th … (W46)
                policy: policy(0, 0, 2),
                now: NOW,
                keep: &["d0", "d1", "d3"],
                delete: &[
                    ("d2", OutsidePolicy),
                    ("d4", OutsidePolicy),
                    ("d5", OutsidePolicy),
                    ("d6", OutsidePolicy),
                    ("d7", OutsidePolicy),
                    ("d8", OutsidePolicy),
                    ("d9", OutsidePolicy),
                    ("d10", OutsidePolicy),
                    ("d11", OutsidePolicy),
                    ("d12", OutsidePolicy),
                    ("d13", OutsidePolicy),
                    ("d14", OutsidePolicy),
                ],
            },
            Case {
                what: "days are calendar days before now, not the last days that have bundles",
                bundles: vec![
                    c("old1", datetime!(2026-11-13 02:00 UTC), V),
                    c("old2", datetime!(2026-11-12 02:00 UTC), U),
                ],
                policy: policy(0, 7, 0),
                now: NOW,
                keep: &["old1"],
                delete: &[("old2", OutsidePolicy)],
            },
            Case {
                what: "a bundle from the future is kept and takes no slot",
                bundles: vec![
                    c("future", datetime!(2026-11-24 09:00 UTC), U),
                    c("today", datetime!(2026-11-23 02:00 UTC), V),
                    c("older", datetime!(2026-11-23 01:00 UTC), U),
                ],
                policy: policy(1, 0, 0),
                now: NOW,
                keep: &["future", "today"],
                delete: &[("older", OutsidePolicy)],
            },
            Case {
                what: "days are counted in now's UTC offset",
                bundles: vec![
                    // 23:30 UTC on the 22nd is 00:30 on the 23rd in Vienna: today, not yesterday.
                    c("late", datetime!(2026-11-22 23:30 UTC), V),
                    c("evening", datetime!(2026-11-22 20:00 UTC), U),
                ],
                policy: policy(0, 1, 0),
                now: datetime!(2026-11-23 13:00 +01:00),
                keep: &["late"],
                delete: &[("evening", OutsidePolicy)],
            },
            Case {
                what: "an empty directory plans nothing",
                bundles: vec![],
                policy: policy(3, 7, 4),
                now: NOW,
                keep: &[],
                delete: &[],
            },
        ];
        for case in cases {
            let plan = plan_prune(&case.bundles, case.policy, case.now);
            let kept: Vec<&str> = plan.keep.iter().map(|k| k.file_name.as_str()).collect();
            let deleted: Vec<(&str, DeleteReason)> =
                plan.delete.iter().map(|d| (d.file_name.as_str(), d.reason)).collect();
            assert_eq!(kept, case.keep, "{}: {plan:#?}", case.what);
            assert_eq!(deleted, case.delete, "{}: {plan:#?}", case.what);
            // Whatever the case: the newest verified bundle is never in the delete list.
            let mut verified: Vec<&Candidate> = case.bundles.iter().filter(|b| b.known == V).collect();
            verified.sort_by_key(|b| std::cmp::Reverse(b.created_utc));
            if let Some(newest) = verified.first() {
                assert!(kept.contains(&newest.file_name.as_str()), "{}: {plan:#?}", case.what);
            }
        }
    }

    #[test]
    fn a_plan_says_why_each_bundle_stays() {
        let bundles = [c("a", datetime!(2026-11-23 02:00 UTC), V), c("b", datetime!(2026-11-16 02:00 UTC), U)];
        let plan = plan_prune(&bundles, policy(1, 1, 2), NOW);
        assert_eq!(
            plan.keep,
            [
                Keep {
                    file_name: "a".into(),
                    reasons: vec![
                        KeepReason::Last { rank: 1 },
                        KeepReason::Daily { day: "2026-11-23".into() },
                        KeepReason::Weekly { week: "2026-W48".into() },
                        KeepReason::NewestVerified,
                    ],
                },
                Keep { file_name: "b".into(), reasons: vec![KeepReason::Weekly { week: "2026-W47".into() }] },
            ]
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["keep"][0]["reasons"][1], serde_json::json!({"rule": "daily", "day": "2026-11-23"}));
    }
}
