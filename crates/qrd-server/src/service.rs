//! Who starts and stops the server, and a restart that never leaves it down.
//!
//! A server that a service manager runs must be restarted through it: behind its back the manager's view
//! goes stale (systemd marks the unit failed, or restarts a server we meant to keep down) and its own
//! start-up (pg_ctlcluster's options, log file and socket directory, the unit's environment) is lost. So:
//!
//! 1. a Debian/Ubuntu cluster (configuration in `/etc/postgresql/<version>/<name>/`, `pg_ctlcluster` on
//!    the machine) goes through `pg_ctlcluster <version> <name> …`, which itself hands over to
//!    `systemctl` when systemd runs the cluster, and switches to the owner with all of its groups;
//! 2. a postmaster in a systemd service's cgroup goes through `systemctl … <unit>`;
//! 3. anything else through pg_ctl, as the data directory's owner with that user's groups.

use std::fmt;
use std::path::{Path, PathBuf};

use qrd_conf::write::{Applied, WriteError};
use qrd_pgbin::{Limits, ToolError, run_with, scrubbed_command};

use crate::pgctl::{PgCtl, PgCtlError, Status, StopMode, postmaster_pid, tail};

/// postgresql-common's wrapper, where Debian and Ubuntu install it.
const PG_CTLCLUSTER: &str = "/usr/bin/pg_ctlcluster";
/// Present while systemd is the init system (sd_booted(3) checks the same directory).
const SYSTEMD_RUNNING: &str = "/run/systemd/system";
/// Journal lines quoted when a unit fails to start.
const JOURNAL_LINES: usize = 30;

/// What runs the server.
#[derive(Debug, Clone)]
pub enum Manager {
    /// postgresql-common's `pg_ctlcluster <version> <cluster>` (Debian, Ubuntu).
    PgCtlCluster { program: PathBuf, version: String, cluster: String },
    /// A systemd service unit whose cgroup holds the postmaster.
    Systemd { unit: String },
    /// Nothing but pg_ctl.
    PgCtl(PgCtl),
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    PgCtl(#[from] PgCtlError),

    /// pg_ctlcluster or systemctl failed; their output is in the message.
    #[error(transparent)]
    Tool(#[from] ToolError),

    /// A systemd unit failed; the journal's last lines of the unit follow the command's output.
    #[error(
        "{source}\n--- journalctl -u {unit} (last {JOURNAL_LINES} lines) ---\n{journal}\n--- end of the journal ---"
    )]
    Unit { unit: String, source: ToolError, journal: String },
}

/// The server of one data directory and what controls it.
#[derive(Debug, Clone)]
pub struct Service {
    data_dir: PathBuf,
    manager: Manager,
    /// Whether its commands run to their end when qrd is interrupted ([`Service::finishing`]).
    finish_on_interrupt: bool,
}

impl Service {
    /// Finds what manages the server whose data directory is `data_dir` and whose main configuration file
    /// is `config_file` (as the server reports them). `pg_ctl` is called only when nothing else manages it,
    /// so a Debian or systemd server needs no pg_ctl of its own major on the machine.
    pub fn detect<E>(
        data_dir: &Path,
        config_file: &Path,
        pg_ctl: impl FnOnce() -> Result<PgCtl, E>,
    ) -> Result<Self, E> {
        let data_dir = data_dir.to_path_buf();
        if let Some((version, cluster)) = debian_cluster(config_file)
            && Path::new(PG_CTLCLUSTER).exists()
        {
            let manager = Manager::PgCtlCluster { program: PG_CTLCLUSTER.into(), version, cluster };
            return Ok(Self { data_dir, manager, finish_on_interrupt: false });
        }
        if Path::new(SYSTEMD_RUNNING).is_dir()
            && let Some((pid, _)) = postmaster_pid(&data_dir)
            && let Ok(cgroup) = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            && let Some(unit) = systemd_unit(&cgroup)
        {
            return Ok(Self { data_dir, manager: Manager::Systemd { unit }, finish_on_interrupt: false });
        }
        Ok(Self { data_dir, manager: Manager::PgCtl(pg_ctl()?), finish_on_interrupt: false })
    }

    /// A server controlled with `pg_ctl` alone.
    pub fn pg_ctl(pg_ctl: PgCtl) -> Self {
        Self { data_dir: pg_ctl.data_dir().to_path_buf(), manager: Manager::PgCtl(pg_ctl), finish_on_interrupt: false }
    }

    /// A copy whose commands run to their end when qrd is interrupted (Ctrl-C, SIGTERM): for what puts the
    /// server back after a failed restart. Otherwise an interruption kills the running command and the call
    /// returns [`ToolError::Interrupted`] (a server that pg_ctl already started keeps running).
    pub fn finishing(&self) -> Service {
        let manager = match &self.manager {
            Manager::PgCtl(ctl) => Manager::PgCtl(ctl.clone().finish_on_interrupt(true)),
            other => other.clone(),
        };
        Service { data_dir: self.data_dir.clone(), manager, finish_on_interrupt: true }
    }

    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server (fast) and starts it again, returning once it accepts connections.
    pub async fn restart(&self) -> Result<(), ServiceError> {
        match &self.manager {
            Manager::PgCtlCluster { .. } => self.cluster("restart", &[]).await.map(drop),
            Manager::Systemd { unit } => self.systemctl("restart", unit).await,
            Manager::PgCtl(ctl) => Ok(ctl.restart(StopMode::Fast).await?),
        }
    }

    /// Starts the server, returning once it accepts connections. pg_ctl starts it with the options it last
    /// ran with (see [`PgCtl::start_as_before`]).
    pub async fn start(&self) -> Result<(), ServiceError> {
        match &self.manager {
            Manager::PgCtlCluster { .. } => self.cluster("start", &[]).await.map(drop),
            Manager::Systemd { unit } => self.systemctl("start", unit).await,
            Manager::PgCtl(ctl) => Ok(ctl.start_as_before().await?),
        }
    }

    /// Stops the server, returning once it is down. `mode` is pg_ctl's (pg_ctlcluster passes it on); a
    /// systemd unit stops the way its `ExecStop`/`KillSignal` say (the packaged units: fast).
    pub async fn stop(&self, mode: StopMode) -> Result<(), ServiceError> {
        match &self.manager {
            Manager::PgCtlCluster { .. } => self.cluster("stop", &[&format!("--mode={mode}")]).await.map(drop),
            Manager::Systemd { unit } => self.systemctl("stop", unit).await,
            Manager::PgCtl(ctl) => Ok(ctl.stop(mode).await?),
        }
    }

    /// Ends a standby's recovery, returning once it is promoted: `pg_ctlcluster … promote` for a Debian
    /// cluster, else pg_ctl promote as the owner. systemd has no promotion of its own (it is a signal to the
    /// running postmaster, which the unit does not track), so a systemd server, which holds no pg_ctl, is
    /// promoted with the one `pg_ctl` gives.
    pub async fn promote<E: From<ServiceError>>(&self, pg_ctl: impl FnOnce() -> Result<PgCtl, E>) -> Result<(), E> {
        let promoted = match &self.manager {
            Manager::PgCtlCluster { .. } => return Ok(self.cluster("promote", &[]).await.map(drop)?),
            Manager::Systemd { .. } => pg_ctl()?.promote().await,
            Manager::PgCtl(ctl) => ctl.promote().await,
        };
        promoted.map_err(|e| E::from(ServiceError::from(e)))
    }

    /// Whether a server runs for the data directory.
    pub async fn is_running(&self) -> Result<bool, ServiceError> {
        let stopped_code = |e: &ToolError| e.code() == Some(3);
        match &self.manager {
            // pg_ctlcluster passes pg_ctl status's exit code on (3: not running); `systemctl is-active` says
            // 3 for an inactive or failed unit.
            Manager::PgCtlCluster { .. } => match self.cluster("status", &[]).await {
                Ok(_) => Ok(true),
                Err(ServiceError::Tool(e)) if stopped_code(&e) => Ok(false),
                Err(e) => Err(e),
            },
            Manager::Systemd { unit } => {
                let mut cmd = scrubbed_command("systemctl");
                cmd.args(["is-active", "--quiet", unit]);
                match run_with(cmd, &format!("ask systemd whether {unit} is active"), self.limits()).await {
                    Ok(_) => Ok(true),
                    Err(e) if stopped_code(&e) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Manager::PgCtl(ctl) => Ok(matches!(ctl.status().await?, Status::Running { .. })),
        }
    }

    /// Restarts the server to apply `applied` (the files just written). When it does not come back, the
    /// previous files are put back (last first) and the server is started again with them, so a bad
    /// setting costs a failed command, not a server that stays down. The error says which of that
    /// happened; [`RestartFailure::is_down`] is true only when even the previous files did not start.
    ///
    /// An interrupted restart (Ctrl-C, SIGTERM) fails the same way, and what follows it (the check whether
    /// the server runs, its start with the previous files) runs to its end although qrd was interrupted.
    pub async fn restart_or_roll_back(&self, applied: &[Applied]) -> Result<(), RestartFailure> {
        // pg_ctl: the log destination is decided while the server still runs, so a start after a failed
        // restart logs to the same place.
        if let Manager::PgCtl(ctl) = &self.manager
            && !ctl.has_log_file()
        {
            let ctl = match ctl.with_current_log() {
                Ok(ctl) => ctl,
                // Nothing was stopped: the files go back so they agree with the running server again.
                Err(e) => {
                    let (restored, not_restored) = restore_all(applied);
                    return Err(RestartFailure { cause: e.into(), restored, not_restored, after: After::NeverStopped });
                }
            };
            let service = Service { manager: Manager::PgCtl(ctl), ..self.clone() };
            return service.restart_then_roll_back(applied).await;
        }
        self.restart_then_roll_back(applied).await
    }

    async fn restart_then_roll_back(&self, applied: &[Applied]) -> Result<(), RestartFailure> {
        let pid_before = postmaster_pid(&self.data_dir).map(|(pid, _)| pid);
        let Err(cause) = self.restart().await else { return Ok(()) };
        tracing::debug!(service = %self, error = %cause, "the restart failed; putting the previous files back");
        let putting_back = self.finishing();
        let running = putting_back.is_running().await.ok();
        let pid_now = postmaster_pid(&self.data_dir).map(|(pid, _)| pid);
        let mut failure =
            RestartFailure { cause, restored: Vec::new(), not_restored: None, after: After::Down { start: None } };
        // A new postmaster that is up but was not ready in time (long crash recovery) runs the new files:
        // putting the old ones back now would leave files and server disagreeing.
        if running == Some(true) && pid_now.is_some() && pid_now != pid_before {
            failure.after = After::StartedLate;
            return Err(failure);
        }
        (failure.restored, failure.not_restored) = restore_all(applied);
        if running == Some(true) {
            failure.after = After::NeverStopped;
            return Err(failure);
        }
        if failure.not_restored.is_some() {
            // Not started: it would read the file that could not be put back.
            return Err(failure);
        }
        failure.after = match putting_back.start().await {
            Ok(()) => After::RunsAgain,
            Err(e) => After::Down { start: Some(e) },
        };
        Err(failure)
    }

    fn limits(&self) -> Limits {
        Limits { timeout: None, finish_on_interrupt: self.finish_on_interrupt }
    }

    /// `pg_ctlcluster [OPTIONS] VERSION CLUSTER ACTION`.
    async fn cluster(&self, action: &str, options: &[&str]) -> Result<std::process::Output, ServiceError> {
        let Manager::PgCtlCluster { program, version, cluster } = &self.manager else {
            unreachable!("only called for pg_ctlcluster")
        };
        let mut cmd = scrubbed_command(program);
        cmd.args(options).args([version, cluster, action]).current_dir("/");
        let what = match action {
            "status" => "ask whether the server runs".to_owned(),
            other => format!("{other} the PostgreSQL cluster {version}/{cluster}"),
        };
        Ok(run_with(cmd, &what, self.limits()).await?)
    }

    /// `systemctl ACTION UNIT`; when it fails, the unit's journal's last lines with the error.
    async fn systemctl(&self, action: &str, unit: &str) -> Result<(), ServiceError> {
        let mut cmd = scrubbed_command("systemctl");
        cmd.args([action, unit]);
        match run_with(cmd, &format!("{action} the systemd unit {unit}"), self.limits()).await {
            Ok(_) => Ok(()),
            Err(source) => {
                let mut journal = scrubbed_command("journalctl");
                journal.args(["-u", unit, "-n", &JOURNAL_LINES.to_string(), "--no-pager", "-o", "short-iso"]);
                let journal = match run_with(journal, &format!("read the journal of {unit}"), self.limits()).await {
                    Ok(out) => tail(&String::from_utf8_lossy(&out.stdout), JOURNAL_LINES),
                    Err(e) => format!("(not available: {e})"),
                };
                Err(ServiceError::Unit { unit: unit.to_owned(), source, journal })
            }
        }
    }
}

impl fmt::Display for Service {
    /// `pg_ctlcluster 15 main`, `systemctl (unit postgresql.service)`, `pg_ctl as postgres (uid 101, …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manager {
            Manager::PgCtlCluster { version, cluster, .. } => write!(f, "pg_ctlcluster {version} {cluster}"),
            Manager::Systemd { unit } => write!(f, "systemctl (unit {unit})"),
            Manager::PgCtl(ctl) => match ctl.identity() {
                Some(id) => write!(f, "pg_ctl as {id}"),
                None => f.write_str("pg_ctl"),
            },
        }
    }
}

/// Puts every file back from its backup, last first: the paths put back (in the order given), and the
/// first one that could not be (the ones before it in `applied` were then left as written).
fn restore_all(applied: &[Applied]) -> (Vec<PathBuf>, Option<NotRestored>) {
    let mut restored = Vec::new();
    let mut failed = None;
    for a in applied.iter().rev() {
        if let Err(source) = a.undo() {
            failed = Some(NotRestored { file: a.path.clone(), backup: a.backup.clone(), source });
            break;
        }
        restored.push(a.path.clone());
    }
    restored.reverse();
    (restored, failed)
}

/// `(version, cluster)` when `config_file` lies in postgresql-common's layout
/// `/etc/postgresql/<version>/<cluster>/`; versions are `15` or, before 10, `9.6`.
pub fn debian_cluster(config_file: &Path) -> Option<(String, String)> {
    let dir = config_file.parent()?;
    let cluster = dir.file_name()?.to_str()?;
    let version_dir = dir.parent()?;
    let version = version_dir.file_name()?.to_str()?;
    if version_dir.parent()? != Path::new("/etc/postgresql") {
        return None;
    }
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let version_ok = match version.split_once('.') {
        Some((a, b)) => numeric(a) && numeric(b),
        None => numeric(version),
    };
    (version_ok && !cluster.is_empty()).then(|| (version.to_owned(), cluster.to_owned()))
}

/// The system service unit in a `/proc/<pid>/cgroup` text: the last `*.service` component of the systemd
/// hierarchy's path (cgroup v1's `name=systemd` line, else the v2 `0::` line). Units of a user's own
/// manager (under `user.slice`) are not the system's to restart, and a login session's scope is no unit.
pub fn systemd_unit(cgroup: &str) -> Option<String> {
    let path_of = |prefix: &str| {
        cgroup.lines().find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            rest.strip_prefix(prefix).map(str::to_owned)
        })
    };
    let path = path_of("name=systemd:").or_else(|| path_of(":"))?;
    if path.starts_with("/user.slice") {
        return None;
    }
    path.split('/').rev().find(|c| c.ends_with(".service")).map(str::to_owned)
}

/// A restart that did not bring the server back with the new files, and what was done about it.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct RestartFailure {
    /// Why the restart failed (the manager's output: pg_ctl's and the server log's last lines,
    /// pg_ctlcluster's log excerpt, the unit's journal).
    pub cause: ServiceError,
    /// The files put back, in the order given.
    pub restored: Vec<PathBuf>,
    /// A file that could not be put back (the server is then not started with it).
    pub not_restored: Option<NotRestored>,
    pub after: After,
}

#[derive(Debug)]
pub struct NotRestored {
    pub file: PathBuf,
    pub backup: PathBuf,
    pub source: WriteError,
}

/// The server's state after a failed restart.
#[derive(Debug)]
pub enum After {
    /// Started again with the previous files.
    RunsAgain,
    /// The stop itself failed (or nothing was tried): the server still runs with the settings it had.
    NeverStopped,
    /// A new postmaster is up with the new files but was not ready in time; nothing was put back.
    StartedLate,
    /// Not running: starting it again failed (`start`), or was not tried because a previous file could not
    /// be put back.
    Down { start: Option<ServiceError> },
}

impl RestartFailure {
    /// The next step for the DBA, by what state the server was left in.
    pub fn hint(&self, service: &Service) -> String {
        match (&self.after, &self.not_restored) {
            (_, Some(n)) => format!(
                "copy {} over {} yourself now, then {}",
                n.backup.display(),
                n.file.display(),
                if self.is_down() { format!("start the server ({service})") } else { "reload".to_owned() }
            ),
            (After::RunsAgain, None) => {
                "the server's own words are above: fix the value and run the command again".to_owned()
            }
            (After::NeverStopped, None) => {
                "see above why the server could not be restarted, then run the command again".to_owned()
            }
            (After::StartedLate, None) => {
                "the server is still starting: watch its log, then check the values with `qrd conf get`".to_owned()
            }
            (After::Down { .. }, None) => format!(
                "start the server now ({service}); if it still fails, put the previous file back from its .qrd-*.bak copy \
             beside it"
            ),
        }
    }

    /// The server is not running.
    pub fn is_down(&self) -> bool {
        matches!(self.after, After::Down { .. })
    }

    fn describe(&self) -> String {
        let files = self.restored.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        let back = match (&self.not_restored, self.restored.is_empty()) {
            (Some(n), _) => format!(
                "putting the previous {} back from {} failed: {}{}",
                n.file.display(),
                n.backup.display(),
                n.source,
                if files.is_empty() { String::new() } else { format!(" (put back: {files})") }
            ),
            (None, true) => "qrd wrote no file in this run, so there was nothing to put back".to_owned(),
            (None, false) => format!("the previous files are back in place ({files})"),
        };
        let (headline, state) = match &self.after {
            After::RunsAgain => (
                "the server did not start with the new settings",
                format!("{back}, and the server runs again with them"),
            ),
            After::NeverStopped => (
                "the server was not restarted",
                format!("the server was not stopped: it still runs with the settings it had; {back}"),
            ),
            After::StartedLate => (
                "the server was restarted but did not report ready",
                "a new server process is up with the new settings but was not ready in time (crash recovery?); \
                 the files were left as written"
                    .to_owned(),
            ),
            After::Down { start: Some(e) } => (
                "the server did not start with the new settings",
                format!("the server is DOWN: {back}, but starting the server again failed too:\n{e}"),
            ),
            After::Down { start: None } => {
                ("the server did not start with the new settings", format!("the server is DOWN: {back}"))
            }
        };
        format!("{headline}: {}\n\n{state}", self.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrd_pgbin::Check;

    #[test]
    fn debian_layout_names_version_and_cluster() {
        let d = |p: &str| debian_cluster(Path::new(p));
        assert_eq!(d("/etc/postgresql/15/main/postgresql.conf"), Some(("15".into(), "main".into())));
        assert_eq!(d("/etc/postgresql/9.6/qlik/postgresql.conf"), Some(("9.6".into(), "qlik".into())));
        assert_eq!(d("/var/lib/postgresql/15/main/postgresql.conf"), None);
        assert_eq!(d("/etc/postgresql/fifteen/main/postgresql.conf"), None);
        assert_eq!(d("/etc/postgresql/15/postgresql.conf"), None);
        assert_eq!(d("/srv/etc/postgresql/15/main/postgresql.conf"), None);
        assert_eq!(d("/tmp/qrd-pg-x/data/postgresql.conf"), None);
    }

    #[test]
    fn systemd_units_from_cgroup_files() {
        // cgroup v2, a packaged unit.
        assert_eq!(
            systemd_unit("0::/system.slice/postgresql@15-main.service\n").as_deref(),
            Some("postgresql@15-main.service")
        );
        // v1 (hybrid): the name=systemd line counts, not the controllers'.
        let v1 =
            "12:memory:/system.slice/postgresql.service\n1:name=systemd:/system.slice/postgresql-16.service\n0::/\n";
        assert_eq!(systemd_unit(v1).as_deref(), Some("postgresql-16.service"));
        // Started by hand from a login session, or in a container without systemd: no unit.
        assert_eq!(systemd_unit("0::/user.slice/user-0.slice/session-3.scope\n"), None);
        assert_eq!(systemd_unit("9:name=systemd:/\n0::/\n"), None);
        // A user's own service manager is not the system's.
        assert_eq!(systemd_unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/pg.service\n"), None);
    }

    #[test]
    fn a_plain_data_directory_is_pg_ctls() {
        let t = tempfile::tempdir().unwrap();
        let conf = t.path().join("postgresql.conf");
        let service =
            Service::detect(t.path(), &conf, || Ok::<_, ()>(PgCtl::new("/usr/lib/postgresql/15/bin/pg_ctl", t.path())))
                .unwrap();
        assert!(matches!(service.manager(), Manager::PgCtl(_)), "{service:?}");
        assert_eq!(service.to_string(), "pg_ctl");
    }

    #[test]
    fn a_debian_cluster_is_pg_ctlclusters_and_needs_no_pg_ctl() {
        if !Path::new(PG_CTLCLUSTER).exists() {
            eprintln!("no {PG_CTLCLUSTER} here (install-postgres.sh installs postgresql-common); nothing to check");
            return;
        }
        let service = Service::detect(
            Path::new("/var/lib/postgresql/15/main"),
            Path::new("/etc/postgresql/15/main/postgresql.conf"),
            || -> Result<PgCtl, &str> { Err("pg_ctl must not be looked for") },
        )
        .unwrap();
        assert_eq!(service.to_string(), "pg_ctlcluster 15 main");
    }

    /// Ctrl-C or SIGTERM while pg_ctl restarts the server: pg_ctl is stopped, and the server is put back all
    /// the same (the check whether it runs and its start run to their end). The scenario runs in a process
    /// of its own ([`interrupted_restart_scenario`]): the signals are taken over for the whole process.
    #[test]
    fn an_interrupted_restart_still_puts_the_server_back() {
        let t = tempfile::tempdir().unwrap();
        // A stand-in for pg_ctl: a restart that takes long, a server that is down, a start that works.
        let fake = t.path().join("pg_ctl");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$1\" in\n  restart) touch \"$0.restarting\"; sleep 60 ;;\n  status) exit 3 ;;\n  \
             start) touch \"$0.started\" ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "service::tests::interrupted_restart_scenario", "--nocapture"])
            .env("QRD_SERVICE_TEST_PG_CTL", &fake)
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{said}");
        assert!(said.contains("1 passed"), "the scenario did not run: {said}");
        assert!(t.path().join("pg_ctl.started").exists(), "{said}");
    }

    #[test]
    fn interrupted_restart_scenario() {
        let Some(fake) = std::env::var_os("QRD_SERVICE_TEST_PG_CTL").map(PathBuf::from) else { return };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            qrd_pgbin::interrupt::install();
            let ctl = PgCtl::new(&fake, fake.with_file_name("data")).log_file(fake.with_file_name("server.log"));
            let service = Service::pg_ctl(ctl);
            let restarting = fake.with_file_name("pg_ctl.restarting");
            let stop_qrd = async {
                let seen = qrd_pgbin::poll_until(
                    std::time::Instant::now() + std::time::Duration::from_secs(30),
                    "pg_ctl restarts",
                    || async { Ok::<_, ()>(if restarting.exists() { Check::Done(()) } else { Check::pending() }) },
                );
                seen.await.unwrap();
                nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
            };
            let (restarted, ()) = tokio::join!(service.restart_or_roll_back(&[]), stop_qrd);
            let failure = restarted.unwrap_err();
            assert!(matches!(failure.after, After::RunsAgain), "{failure}");
            assert!(
                matches!(
                    &failure.cause,
                    ServiceError::PgCtl(PgCtlError::Start { source: ToolError::Interrupted { .. }, .. })
                ),
                "{failure:?}"
            );
        });
    }

    #[test]
    fn failure_messages_say_what_state_the_server_is_in() {
        let cause = || {
            ServiceError::Tool(ToolError::exited(
                "restart the PostgreSQL cluster 15/main",
                "/usr/bin/pg_ctlcluster 15 main restart",
                &std::process::Output {
                    status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
                    stdout: Vec::new(),
                    stderr: b"The PostgreSQL server failed to start. Please check the log output:\nFATAL:  bad"
                        .to_vec(),
                },
            ))
        };
        let f = RestartFailure {
            cause: cause(),
            restored: vec!["/etc/postgresql/15/main/postgresql.conf".into()],
            not_restored: None,
            after: After::RunsAgain,
        };
        let msg = f.to_string();
        assert!(!f.is_down());
        assert!(msg.starts_with("the server did not start with the new settings: failed to restart the PostgreSQL cluster 15/main: `/usr/bin/pg_ctlcluster 15 main restart` exited with status 1"), "{msg}");
        assert!(msg.contains("  FATAL:  bad"), "{msg}");
        assert!(msg.ends_with("the previous files are back in place (/etc/postgresql/15/main/postgresql.conf), and the server runs again with them"), "{msg}");

        let f = RestartFailure {
            cause: cause(),
            restored: vec!["/x.conf".into()],
            not_restored: None,
            after: After::Down { start: Some(cause()) },
        };
        assert!(f.is_down());
        assert!(
            f.to_string().contains("the server is DOWN: the previous files are back in place (/x.conf), but starting"),
            "{f}"
        );
    }
}
