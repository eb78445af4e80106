//! What can go wrong, each with its next step.

use qrd_exit::{ExitStatus, UserError};
use std::path::PathBuf;

use qrd_pg::inventory::QueryError;
use qrd_pgbin::{TimedOut, WaitError};

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("name at least one standby address (--standby ADDR[/PREFIX])")]
    NoStandby,
    #[error("role {role:?} does not exist yet: it needs a password")]
    PasswordNeeded { role: String },
    #[error("{given:?} is not a standby address: {message}")]
    Address { given: String, message: String },
    #[error("{}: {message}", path.display())]
    Hba { path: PathBuf, message: String },
    #[error("a server is running on {} (pid {pid}): a clone never overwrites a running server", dir.display())]
    ServerRunning { dir: PathBuf, pid: u32 },
    #[error("{} is not empty", dir.display())]
    NotEmpty { dir: PathBuf },
    #[error("--trigger-file must be an absolute path, not {}", path.display())]
    TriggerNotAbsolute { path: PathBuf },
    #[error("PostgreSQL {major} has no promote_trigger_file (removed in 16): a trigger file cannot promote it")]
    TriggerFileRemoved { major: u32 },
    #[error("the data directory's OS user: {message}")]
    OsUser { message: String },
    #[error("the standby in {} did not stream: {waited}", dir.display())]
    NotStreaming { dir: PathBuf, waited: TimedOut, log: String },
    #[error(
        "{} belongs to the PostgreSQL {cluster_major} cluster configured in {}; the primary runs {primary_major}",
        dir.display(),
        config.display()
    )]
    ClusterMajor { dir: PathBuf, config: PathBuf, cluster_major: u32, primary_major: u32 },
    #[error(
        "the copy of the primary has no postgresql.conf (the primary keeps its configuration outside its data directory), and {} has none of its own",
        dir.display()
    )]
    NoConfiguration { dir: PathBuf },
    #[error("failed to read {}: {source}", path.display())]
    AutoConf { path: PathBuf, source: qrd_conf::ParseError },
    #[error("pg_controldata could not be read for {}: {message}", dir.display())]
    ControlData { dir: PathBuf, message: String },
    #[error("failed to {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Local(#[from] qrd_server::LocalError),
    #[error(transparent)]
    Plan(#[from] qrd_conf::pgconf::PlanError),
    #[error(transparent)]
    Write(#[from] qrd_server::WriteError),
    #[error(transparent)]
    Settings(#[from] qrd_server::settings::SettingsError),
    #[error(transparent)]
    Tools(#[from] qrd_pgbin::FindError),
    #[error(transparent)]
    Tool(#[from] qrd_pgbin::ToolError),
    #[error(transparent)]
    PgCtl(#[from] qrd_server::PgCtlError),
    #[error(transparent)]
    Service(#[from] qrd_server::ServiceError),
    #[error(transparent)]
    Connect(#[from] qrd_pg::connect::ConnectError),
    #[error("{server} is not a standby (it is not in recovery): nothing to promote")]
    NotAStandby { server: String },
    #[error(
        "the old primary {address} still accepts writes: promoting would make two primaries and split the site's data"
    )]
    OldPrimaryAlive { address: String },
    #[error("{server} did not accept writes after the promotion request: {waited}")]
    NotPromoted { server: String, waited: TimedOut },
    #[error("the standby's promote_trigger_file is {set:?}, not {}", given.display())]
    TriggerFileNotSet { given: PathBuf, set: String },
    #[error("a server still runs on {} (pid {pid}): the old primary must be stopped before it rejoins", dir.display())]
    StillRunning { dir: PathBuf, pid: u32 },
    #[error("{} is not a PostgreSQL data directory (no PG_VERSION)", dir.display())]
    NotADataDir { dir: PathBuf },
    #[error("pg_rewind could not rewind {}: {message}", dir.display())]
    Rewind { dir: PathBuf, message: String },
    #[error("{server} is not a primary (it is in recovery)")]
    NotAPrimary { server: String },
    #[error("{server} is not streaming from the primary now: a switchover would wait for WAL it cannot get")]
    NotStreamingNow { server: String },
    #[error("{} did not stop cleanly (pg_controldata says the cluster state is {state:?})", dir.display())]
    NotCleanlyStopped { dir: PathBuf, state: String },
    #[error("{server} did not replay past the primary's shutdown checkpoint {lsn}: {waited}; it was not promoted")]
    NotCaughtUp { server: String, lsn: String, waited: TimedOut },
    /// qrd was interrupted (Ctrl-C, SIGTERM) while it waited.
    #[error("stopped waiting until {what}: qrd received {signal}")]
    Interrupted { what: String, signal: String },
    #[error("{0}")]
    Internal(String),
}

impl UserError for ReplicaError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // Errors of the shared homes keep their own codes: a connection failure exits 3.
            ReplicaError::Connect(e) => e.exit_status(),
            ReplicaError::Query(e) => e.exit_status(),
            ReplicaError::Local(e) => e.exit_status(),
            ReplicaError::Write(e) => e.exit_status(),
            ReplicaError::Settings(e) => e.exit_status(),
            ReplicaError::Tools(e) => e.exit_status(),
            // Refused before anything changed.
            ReplicaError::NoStandby
            | ReplicaError::PasswordNeeded { .. }
            | ReplicaError::Address { .. }
            | ReplicaError::ServerRunning { .. }
            | ReplicaError::NotEmpty { .. }
            | ReplicaError::TriggerNotAbsolute { .. }
            | ReplicaError::TriggerFileRemoved { .. }
            | ReplicaError::OsUser { .. }
            | ReplicaError::NotAStandby { .. }
            | ReplicaError::OldPrimaryAlive { .. }
            | ReplicaError::TriggerFileNotSet { .. }
            | ReplicaError::StillRunning { .. }
            | ReplicaError::NotADataDir { .. }
            | ReplicaError::NotAPrimary { .. }
            | ReplicaError::NotStreamingNow { .. }
            | ReplicaError::ClusterMajor { .. }
            | ReplicaError::NoConfiguration { .. } => ExitStatus::Refused,
            // Failed while working.
            ReplicaError::Hba { .. }
            | ReplicaError::NotStreaming { .. }
            | ReplicaError::AutoConf { .. }
            | ReplicaError::ControlData { .. }
            | ReplicaError::Io { .. }
            | ReplicaError::Plan(_)
            | ReplicaError::Tool(_)
            | ReplicaError::PgCtl(_)
            | ReplicaError::Service(_)
            | ReplicaError::NotPromoted { .. }
            | ReplicaError::Rewind { .. }
            | ReplicaError::NotCleanlyStopped { .. }
            | ReplicaError::NotCaughtUp { .. }
            | ReplicaError::Interrupted { .. }
            | ReplicaError::Internal(_) => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl ReplicaError {
    fn hint_text(&self) -> String {
        match self {
            ReplicaError::NoStandby | ReplicaError::Address { .. } => {
                "give each standby's address as the primary sees it, e.g. --standby 10.0.0.12".into()
            }
            ReplicaError::PasswordNeeded { .. } => format!(
                "give it with --replication-password-file FILE (mode 0600) or {}, or at a prompt (never on the command line)",
                qrd_auth::source::REPLICATION_PASSWORD_ENV
            ),
            ReplicaError::Hba { .. } => "fix pg_hba.conf (`qrd hba explain` shows how the server reads it)".into(),
            ReplicaError::ServerRunning { .. } => "stop that server first, or clone into another directory".into(),
            ReplicaError::NotEmpty { .. } => {
                "clone into an empty directory, or add --force (the contents are kept aside, not deleted)".into()
            }
            ReplicaError::TriggerNotAbsolute { .. } => "give the trigger file's full path".into(),
            ReplicaError::TriggerFileRemoved { .. } => {
                "promote with `qrd failover` (pg_promote() over a connection) instead".into()
            }
            ReplicaError::OsUser { .. } => "name the OS user the server runs as with --os-user".into(),
            ReplicaError::NotStreaming { log, .. } => format!(
                "the standby's log ({log}) says why; check the primary's pg_hba.conf replication rule and the replicator's password"
            ),
            ReplicaError::ClusterMajor { .. } => {
                "clone into a cluster of the primary's major (pg_createcluster MAJOR NAME), or into another directory".into()
            }
            ReplicaError::NoConfiguration { .. } => {
                "create the standby's cluster first (pg_createcluster on Debian and Ubuntu) and clone into its data directory with --force"
                    .into()
            }
            ReplicaError::AutoConf { .. } => {
                "fix the line named above (or move the file aside; ALTER SYSTEM writes it anew), then run again".into()
            }
            ReplicaError::ControlData { .. } => {
                "run pg_controldata on the data directory yourself; nothing was promoted: start the old primary again"
                    .into()
            }
            ReplicaError::Io { .. } => "check the directory's permissions and free space".into(),
            ReplicaError::Query(_) => "run again with -v for the statements qrd runs; connect as a superuser".into(),
            ReplicaError::Local(e) => e.hint().unwrap_or_default(),
            ReplicaError::Plan(_) => {
                "postgresql.conf could not be planned: `qrd conf get` shows where settings live".into()
            }
            ReplicaError::Write(e) => e.hint().unwrap_or_default(),
            ReplicaError::Settings(e) => e.hint().unwrap_or_default(),
            ReplicaError::Tools(e) => e.hint().unwrap_or_default(),
            ReplicaError::Tool(qrd_pgbin::ToolError::Interrupted { .. }) | ReplicaError::Interrupted { .. } => {
                "qrd was stopped part-way (a clone's partial copy is removed): `qrd standby status` on each server \
                 shows where it stands; run the command again to finish"
                    .into()
            }
            ReplicaError::Tool(_) => "the tool's own words are above".into(),
            ReplicaError::PgCtl(_) => "the standby's log says why it did not start".into(),
            ReplicaError::Service(_) => "the server's own words are above (its log's last lines with them)".into(),
            ReplicaError::Connect(e) => e.hint().unwrap_or_default(),
            ReplicaError::NotAStandby { .. } => "connect to the standby to promote (-h/-p)".into(),
            ReplicaError::OldPrimaryAlive { .. } => {
                "stop the old primary (or cut it off the network) first; --force promotes anyway".into()
            }
            ReplicaError::NotPromoted { .. } => {
                "the standby's log says why; `qrd standby status` shows its state".into()
            }
            ReplicaError::TriggerFileNotSet { .. } => {
                "give the path the standby was cloned with (--trigger-file), or promote over a connection".into()
            }
            ReplicaError::StillRunning { .. } => {
                "stop it first (pg_ctl stop -m fast, or its service), then rejoin".into()
            }
            ReplicaError::NotADataDir { .. } => "give the old primary's data directory".into(),
            ReplicaError::Rewind { .. } => {
                "pg_rewind's words are above; add --reclone to clone the directory afresh (its contents are kept aside)"
                    .into()
            }
            ReplicaError::NotAPrimary { .. } => "connect (-h/-p) to the primary; --standby names the standby".into(),
            ReplicaError::NotStreamingNow { .. } => "`qrd standby status` on the standby shows why".into(),
            ReplicaError::NotCleanlyStopped { .. } | ReplicaError::NotCaughtUp { .. } => {
                "nothing was promoted: start the old primary again (pg_ctl start, or its service) and look at both logs"
                    .into()
            }
            ReplicaError::Internal(_) => "this is a bug in qrd: please report it".into(),
        }
    }

    /// A wait that ended without its value: its probe's own error, [`ReplicaError::Interrupted`], or what
    /// `timed_out` makes of the timeout.
    pub(crate) fn from_wait(e: WaitError<ReplicaError>, timed_out: impl FnOnce(TimedOut) -> ReplicaError) -> Self {
        match e {
            WaitError::TimedOut(t) => timed_out(t),
            WaitError::Failed(e) => e,
            WaitError::Interrupted { what, signal } => ReplicaError::Interrupted { what, signal },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A wait that gave up says what it waited for and saw last; an interrupted one says so; a look that
    /// failed is that failure.
    #[test]
    fn waits_end_in_the_crate_s_own_errors() {
        let waited = TimedOut {
            what: "its WAL receiver streams".into(),
            waited: Duration::from_secs(60),
            last: "its WAL receiver is not running".into(),
        };
        let not_streaming =
            |waited| ReplicaError::NotStreaming { dir: "/srv/standby".into(), waited, log: "its log".into() };
        let e = ReplicaError::from_wait(WaitError::TimedOut(waited), not_streaming);
        assert_eq!(
            e.to_string(),
            "the standby in /srv/standby did not stream: gave up after 60.0 s waiting until its WAL receiver \
             streams (last seen: its WAL receiver is not running)"
        );
        let e = ReplicaError::from_wait(
            WaitError::Interrupted { what: "its WAL receiver streams".into(), signal: "SIGINT".into() },
            not_streaming,
        );
        assert_eq!(e.to_string(), "stopped waiting until its WAL receiver streams: qrd received SIGINT");
        let hint = e.hint().unwrap();
        assert!(hint.starts_with("qrd was stopped part-way"), "{hint}");
        let e = ReplicaError::from_wait(WaitError::Failed(ReplicaError::NoStandby), not_streaming);
        assert!(matches!(e, ReplicaError::NoStandby), "{e:?}");
    }
}
