//! The bundle's `manifest.json`: what was backed up, from where, when and how, and every member that
//! follows it in the bundle. It is the first member, so `qrd backup list` reads a few kilobytes of each
//! bundle instead of decompressing gigabytes; the members' checksums cannot be known before they are
//! written, so they are in the last member, `SHA256SUMS` (see [`crate::bundle`]).
//!
//! Times are UTC, written as RFC 3339 (`2026-11-23T10:15:00Z`). Fields the backup may be unable to fill
//! (a server that hides its version, a site without the QSR tables qrd reads) are `Option`s and are written
//! as `null`, never guessed. Readers ignore fields they do not know, so a later qrd may add fields within
//! one [`FORMAT`]; a change that an older reader would misread raises [`FORMAT`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The bundle format this crate writes and the newest it reads.
pub const FORMAT: u32 = 1;

/// The member names the bundle format reserves at its top level.
pub const MANIFEST_MEMBER: &str = "manifest.json";
pub const CHECKSUMS_MEMBER: &str = "SHA256SUMS";

/// Contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The bundle format ([`FORMAT`] when written by this qrd). A reader refuses a newer format rather
    /// than misread it.
    pub format: u32,
    /// The version of qrd that wrote the bundle.
    pub qrd_version: String,
    /// When the backup run began (before the `--before` hook and the first dump).
    #[serde(with = "time::serde::rfc3339")]
    pub created_utc: OffsetDateTime,
    /// When the last dump and the `--after` hook had ended: the data is no newer than this. Compressing
    /// the bundle follows. `None` while a caller builds the manifest.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_utc: Option<OffsetDateTime>,
    /// The server the databases were dumped from.
    pub source: Source,
    /// How the databases' snapshots relate to each other.
    pub snapshots: Snapshots,
    /// One entry per database dumped, in dump order.
    pub databases: Vec<Database>,
    /// The roles (`pg_dumpall --globals-only`), without which a restore onto a clean server fails on
    /// ownership; `None` when the bundle holds none.
    pub globals: Option<Globals>,
    /// The Qlik Sense site as QSR describes it; `None` when QSR was not dumped or lacks the tables.
    pub site: Option<Site>,
    /// The `--before` / `--after` commands run, in the order they ran.
    pub hooks: Vec<HookRun>,
    /// Every member after `manifest.json` in bundle order, except the trailing `SHA256SUMS`. Filled by
    /// [`crate::bundle::Writer::finish`] from what was added; whatever a caller puts here is replaced.
    pub members: Vec<Member>,
}

impl Manifest {
    /// A manifest of this qrd's format for a run that began at `created_utc`, with nothing dumped yet.
    pub fn new(created_utc: OffsetDateTime, source: Source) -> Manifest {
        Manifest {
            format: FORMAT,
            qrd_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_utc,
            finished_utc: None,
            source,
            snapshots: Snapshots::PerDatabase,
            databases: Vec::new(),
            globals: None,
            site: None,
            hooks: Vec::new(),
            members: Vec::new(),
        }
    }

    /// The member called `path`, if the manifest lists it.
    pub fn member(&self, path: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.path == path)
    }

    /// The oldest PostgreSQL major whose pg_restore reads every archive of the bundle: the source server's,
    /// or a newer pg_dump's (an archive is in the format of the pg_dump that wrote it: pg_restore 15 refuses
    /// the 1.15 archives of pg_dump 16 whatever server it dumped). `None` when the manifest names neither.
    pub fn archive_major(&self) -> Option<u32> {
        let dumped = self
            .databases
            .iter()
            .filter_map(|d| d.pg_dump_version.as_deref())
            .filter_map(|v| {
                // `16.4` as qrd records it, or a whole `pg_dump (PostgreSQL) 16.4` line.
                qrd_pgbin::PgVersion::parse(v).or_else(|_| qrd_pgbin::PgVersion::from_version_output(v)).ok()
            })
            .map(|v| v.major);
        self.source.server_major.into_iter().chain(dumped).max()
    }
}

/// The server dumped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Host name or socket directory as qrd connected (the connection's `host`).
    pub host: String,
    pub port: u16,
    /// `server_version` as the server reports it (`16.4 (Debian 16.4-1.pgdg120+1)`).
    pub server_version: Option<String>,
    /// The major version (12, 14, 16 …): the client tools a restore needs are at least this one.
    pub server_major: Option<u32>,
    /// `pg_control_system()`'s system identifier: tells two clusters with the same host and port apart.
    pub system_identifier: Option<String>,
    /// Set when the bundle was taken with `--from-data-dir`: the data directory whose copy a private server
    /// ran on (host and port are then that server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_directory: Option<String>,
}

/// How the databases' snapshots relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshots {
    /// Each database was dumped in a snapshot of its own, at its own time (see each database's dump
    /// times): every database is consistent in itself, but not with the others, since PostgreSQL has no
    /// snapshot across databases. A set consistent across the four needs the Qlik services stopped while
    /// they are dumped, as the Qlik guide advises; [`Manifest::hooks`] shows whether a `--before` hook ran.
    PerDatabase,
}

/// One database's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    /// The pg_dump archive format.
    pub format: ArchiveFormat,
    /// The archive's path in the bundle: a directory member (`QSR`) for [`ArchiveFormat::Directory`], a
    /// file member (`QSR.tar`) for [`ArchiveFormat::Tar`].
    pub member: String,
    /// The database's owner role.
    pub owner: Option<String>,
    /// The database's encoding (`UTF8`).
    pub encoding: Option<String>,
    /// When pg_dump started on this database: its snapshot is taken then.
    #[serde(with = "time::serde::rfc3339")]
    pub dump_started_utc: OffsetDateTime,
    /// When pg_dump finished this database.
    #[serde(with = "time::serde::rfc3339")]
    pub dump_finished_utc: OffsetDateTime,
    /// pg_dump's parallel workers (`--jobs`); `None` for one.
    pub jobs: Option<u32>,
    /// `pg_dump --version` of the tool used.
    pub pg_dump_version: Option<String>,
    /// Rows per table, for the restore and the drill to compare with; `None` when not counted.
    pub row_counts: Option<RowCounts>,
    /// What the archive leaves out without `--create`: the database's privileges, settings and connection
    /// limit, read in the dump's snapshot ([`crate::attributes`]). `None` in bundles of a qrd that did not
    /// record them: a restore then says so and leaves the database as it creates it.
    #[serde(default)]
    pub attributes: Option<crate::attributes::DatabaseAttributes>,
}

/// pg_dump's archive formats qrd writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// `pg_dump -Fd`: a directory, one file per table; dumped and restored in parallel (`--jobs`).
    #[default]
    Directory,
    /// `pg_dump -Ft`: one tar file, as the Qlik guide's commands make and restore it; never parallel.
    Tar,
}

/// Row counts of one database's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Counted in the very snapshot pg_dump dumped (exported and shared with `--snapshot`): the dump
    /// holds exactly these rows. `false`: counted beside the dump, so a table written meanwhile may differ.
    pub in_dump_snapshot: bool,
    pub tables: Vec<TableRows>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub schema: String,
    pub table: String,
    pub rows: u64,
}

/// The roles file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Globals {
    /// Its path in the bundle (`globals.sql`); its size is in [`Manifest::members`], its checksum in
    /// `SHA256SUMS`.
    pub member: String,
    /// `pg_dumpall --version` of the tool used.
    pub pg_dumpall_version: Option<String>,
    /// The roles were dumped without their password verifiers (`--no-role-passwords`): the backup ran as a
    /// role that may not read `pg_authid` (a managed server's admin). A restore that creates the
    /// repository role then asks for its password. `false` in bundles of earlier qrd versions.
    #[serde(default)]
    pub no_role_passwords: bool,
}

/// The Qlik Sense site, from QSR at backup time: what a restore onto another host must change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// `"ServerNodeConfigurations"`: the site's nodes.
    pub nodes: Vec<Node>,
    /// `"LocalConfigs"."HostName"` values (the repository's own idea of its host).
    pub local_config_host_names: Vec<String>,
    /// `"ServiceClusterSettingsSharedPersistenceProperties"`: the shared folders, often UNC paths that
    /// contain the old host name; `None` when the table is missing or empty.
    pub shared_persistence: Option<SharedPersistence>,
}

/// A node of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `"HostName"`.
    pub host_name: String,
    /// `"IsCentral"`: the central node, whose host name a new-hostname restore changes.
    pub is_central: bool,
    /// `"Name"`, when the table has it.
    pub name: Option<String>,
    /// `"ID"` (a uuid).
    pub id: Option<String>,
}

/// The shared persistence folders.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SharedPersistence {
    pub root_folder: Option<String>,
    pub app_folder: Option<String>,
    pub static_content_root_folder: Option<String>,
    pub connector32_root_folder: Option<String>,
    pub connector64_root_folder: Option<String>,
    pub archived_logs_root_folder: Option<String>,
}

/// A `--before` or `--after` command that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    pub stage: HookStage,
    /// The command as given (hooks are the DBA's own commands; qrd puts no secret in them).
    pub command: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_utc: OffsetDateTime,
    pub duration_ms: u64,
    /// The exit code; `None` when it was killed (by its timeout or a signal) or could not start.
    pub exit_code: Option<i32>,
    /// It was stopped for running past its timeout.
    pub timed_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStage {
    /// Before the first dump; a failure aborts the backup.
    Before,
    /// After the last dump, also when a dump failed.
    After,
}

/// A member of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its path in the tar: relative, `/`-separated.
    pub path: String,
    pub kind: MemberKind,
    /// Bytes of content (0 for a directory).
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    File,
    Dir,
}

/// Why a member path is not one a bundle may hold, or `None` when it is fine: relative, `/`-separated
/// components that are neither empty, `.` nor `..`, no backslash or control character (so that the path
/// is one plain line in `SHA256SUMS` and means the same to every tar), not a reserved top-level name.
pub fn member_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("an empty path");
    }
    if path.starts_with('/') {
        return Some("an absolute path");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Some("a path with a backslash or a control character");
    }
    if path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("a path with an empty, `.` or `..` component");
    }
    None
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new(
            datetime!(2026-11-23 10:15:00 UTC),
            Source {
                host: "qlik-central".into(),
                port: 4432,
                server_version: Some("14.17".into()),
                server_major: Some(14),
                system_identifier: None,
                data_directory: None,
            },
        );
        m.finished_utc = Some(datetime!(2026-11-23 10:17:30.250 UTC));
        m.databases.push(Database {
            name: "QSR".into(),
            format: ArchiveFormat::Directory,
            member: "QSR".into(),
            owner: Some("qliksenserepository".into()),
            encoding: Some("UTF8".into()),
            dump_started_utc: datetime!(2026-11-23 10:15:01 UTC),
            dump_finished_utc: datetime!(2026-11-23 10:17:00 UTC),
            jobs: Some(2),
            pg_dump_version: Some("pg_dump (PostgreSQL) 14.17".into()),
            row_counts: Some(RowCounts {
                in_dump_snapshot: true,
                tables: vec![TableRows { schema: "public".into(), table: "ServerNodeConfigurations".into(), rows: 2 }],
            }),
            attributes: Some(crate::attributes::DatabaseAttributes {
                acl: Some(vec!["=Tc/qliksenserepository".into(), "qliksenserepository=CTc/qliksenserepository".into()]),
                connection_limit: -1,
                settings: vec![crate::attributes::RoleSettings { role: None, values: vec!["work_mem=8MB".into()] }],
            }),
        });
        m.site = Some(Site {
            nodes: vec![Node { host_name: "qlik-central".into(), is_central: true, name: None, id: None }],
            local_config_host_names: vec!["qlik-central".into()],
            shared_persistence: Some(SharedPersistence {
                root_folder: Some(r"\\qlik-central\QlikShare".into()),
                ..Default::default()
            }),
        });
        m.hooks.push(HookRun {
            stage: HookStage::Before,
            command: "ssh qlik-central 'net stop QlikSenseProxyService'".into(),
            started_utc: datetime!(2026-11-23 10:15:00 UTC),
            duration_ms: 1200,
            exit_code: Some(0),
            timed_out: false,
        });
        m
    }

    #[test]
    fn a_manifest_round_trips_through_json_with_rfc3339_times() {
        let m = sample();
        let json = serde_json::to_string_pretty(&m).unwrap();
        assert!(json.contains(r#""created_utc": "2026-11-23T10:15:00Z""#), "{json}");
        assert!(json.contains(r#""finished_utc": "2026-11-23T10:17:30.25Z""#), "{json}");
        assert!(json.contains(r#""snapshots": "per_database""#), "{json}");
        assert!(json.contains(r#""format": "directory""#), "{json}");
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
    }

    #[test]
    fn a_reader_ignores_fields_it_does_not_know_and_absent_options_are_none() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["added_by_a_later_qrd"] = serde_json::json!({"x": 1});
        v.as_object_mut().unwrap().remove("finished_utc");
        let m: Manifest = serde_json::from_value(v).unwrap();
        assert_eq!(m.finished_utc, None);
    }

    /// A bundle of an earlier qrd has no `no_role_passwords`: its roles carry their verifiers.
    #[test]
    fn globals_without_the_flag_carry_passwords() {
        let mut m = sample();
        m.globals = Some(Globals { member: "globals.sql".into(), pg_dumpall_version: None, no_role_passwords: true });
        let mut v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["globals"]["no_role_passwords"], true);
        v["globals"].as_object_mut().unwrap().remove("no_role_passwords");
        let old: Manifest = serde_json::from_value(v).unwrap();
        assert!(!old.globals.unwrap().no_role_passwords);
    }

    #[test]
    fn a_bundle_from_before_database_attributes_reads_without_them() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["databases"][0].as_object_mut().unwrap().remove("attributes");
        let m: Manifest = serde_json::from_value(v).unwrap();
        assert_eq!(m.databases[0].attributes, None);
        assert_eq!(m.databases[0].name, "QSR");
    }

    #[test]
    fn the_archive_major_is_the_newest_of_the_server_and_the_pg_dumps() {
        let mut m = sample();
        assert_eq!(m.archive_major(), Some(14), "pg_dump 14.17 of a 14 server");
        m.databases[0].pg_dump_version = Some("16.4".into());
        assert_eq!(m.archive_major(), Some(16), "pg_dump 16 writes archives pg_restore 14 cannot read");
        m.source.server_major = None;
        m.databases[0].pg_dump_version = None;
        assert_eq!(m.archive_major(), None);
    }

    #[test]
    fn member_paths_are_plain_relative_paths() {
        for ok in ["globals.sql", "QSR", "QSR/toc.dat", "QSR/3456.dat", "Sense Services/toc.dat", "ÄÖ/x"] {
            assert_eq!(member_path_problem(ok), None, "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "QSR/../../x", "QSR/./x", "QSR//x", "QSR/", "a\\b", "a\nb"] {
            assert!(member_path_problem(bad).is_some(), "{bad:?}");
        }
    }
}
