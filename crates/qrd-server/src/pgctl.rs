//! pg_ctl for one data directory: start, stop, restart, reload, promote and status, run as the directory's
//! owner with that user's groups (pg_ctl refuses root), through the one tool runner so every failure names
//! the command and quotes pg_ctl's output, and a start's failure the server log's last lines too.
//!
//! Both qrd (`conf set --restart`, standbys, failover, switchover) and the test harness drive pg_ctl through
//! this type. qrd awaits it (pg_ctl is then killed when qrd is interrupted; the postmaster it started
//! detaches and keeps running); code without an async runtime (the harness, a `Drop`) uses the few
//! `*_blocking` forms, which build the same commands.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use qrd_pgbin::{Identity, IdentityError, Limits, ToolError, scrubbed_command};

/// How long pg_ctl waits (`-t`) for a start, stop or promotion unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the server log quoted when a start fails.
pub const LOG_TAIL_LINES: usize = 40;

/// pg_ctl's shutdown modes (`-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Wait for every session to end.
    Smart,
    /// Roll back open transactions and disconnect everyone; a clean shutdown (pg_ctl's default).
    Fast,
    /// Quit at once; crash recovery at the next start.
    Immediate,
}

impl StopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

impl fmt::Display for StopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `pg_ctl status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A postmaster runs for the data directory.
    Running { pid: Option<u32> },
    /// None runs (exit status 3).
    Stopped,
    /// The data directory is missing or unreadable (exit status 4).
    NoDataDir,
}

#[derive(Debug, thiserror::Error)]
pub enum PgCtlError {
    #[error("failed to find the OS user to run pg_ctl as: {0}")]
    Identity(#[from] IdentityError),

    /// A start or restart: the server did not come up. `log_tail` holds what the server logged meanwhile.
    #[error("{source}{}", log_section(log.as_deref(), log_tail))]
    Start { source: ToolError, log: Option<PathBuf>, log_tail: String },

    /// stop, reload, promote or status failed.
    #[error(transparent)]
    Tool(#[from] ToolError),

    #[error("failed to prepare the server log file {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn log_section(log: Option<&Path>, tail: &str) -> String {
    match log {
        Some(path) if !tail.trim().is_empty() => format!(
            "\n--- the server log {} since the command ran (last {LOG_TAIL_LINES} lines) ---\n{}\n--- end of the server log ---",
            path.display(),
            tail.trim_end()
        ),
        Some(path) => format!("\n(the server log {} has nothing new)", path.display()),
        None => String::new(),
    }
}

/// Adjusts a pg_ctl `Command` before the identity switch is added: its `pre_exec` hooks run as root
/// (the test harness enters a network namespace here, which needs root).
pub type CommandHook = Arc<dyn Fn(&mut Command) + Send + Sync>;

/// pg_ctl for one data directory. Cheap to clone.
#[derive(Clone)]
pub struct PgCtl {
    program: PathBuf,
    data_dir: PathBuf,
    identity: Option<Identity>,
    log: Option<PathBuf>,
    hook: Option<CommandHook>,
    current_dir: PathBuf,
    timeout: Duration,
    finish_on_interrupt: bool,
}

impl fmt::Debug for PgCtl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCtl")
            .field("program", &self.program)
            .field("data_dir", &self.data_dir)
            .field("identity", &self.identity)
            .field("log", &self.log)
            .field("hook", &self.hook.is_some())
            .field("timeout", &self.timeout)
            .field("finish_on_interrupt", &self.finish_on_interrupt)
            .finish()
    }
}

impl PgCtl {
    /// The pg_ctl at `program` for `data_dir`, run as ourselves.
    pub fn new(program: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        // The child runs from `/` (below), so a relative data directory must be made absolute first.
        let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
        Self {
            program: program.into(),
            data_dir,
            identity: None,
            log: None,
            hook: None,
            // Our own working directory (root's home) may be closed to the server's owner, and pg_ctl and
            // postgres complain when they cannot get back to it; `/` is always reachable.
            current_dir: PathBuf::from("/"),
            timeout: DEFAULT_TIMEOUT,
            finish_on_interrupt: false,
        }
    }

    /// As [`PgCtl::new`], run as the data directory's owner (with its groups) when we are root, since
    /// pg_ctl refuses to run as root; as anyone else, as ourselves (only the owner or root can signal the
    /// postmaster, and pg_ctl says so when we are neither).
    pub fn for_owner(program: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Result<Self, PgCtlError> {
        let ctl = Self::new(program, data_dir);
        let identity = if nix::unistd::geteuid().is_root() {
            let owner = Identity::owner_of(&ctl.data_dir)?;
            (!owner.is_current()).then_some(owner)
        } else {
            None
        };
        Ok(ctl.run_as(identity))
    }

    /// The OS identity pg_ctl runs as (`None`: as ourselves).
    pub fn run_as(mut self, identity: Option<Identity>) -> Self {
        self.identity = identity;
        self
    }

    /// Where a started server writes its output (`-l`). Without one, [`PgCtl::start`] and
    /// [`PgCtl::restart`] pick one with [`log_destination`]: a started postmaster would otherwise hold
    /// pg_ctl's output pipes open for as long as it runs.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// pg_ctl's `-t` for commands that wait.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lets pg_ctl finish when qrd is interrupted (Ctrl-C, SIGTERM), for what puts a server back (the start
    /// after a failed restart); otherwise pg_ctl is killed and the call returns [`ToolError::Interrupted`].
    pub fn finish_on_interrupt(mut self, finish: bool) -> Self {
        self.finish_on_interrupt = finish;
        self
    }

    /// The working directory of pg_ctl (default `/`).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = dir.into();
        self
    }

    /// A hook that adjusts every pg_ctl command before the identity switch is installed (see
    /// [`CommandHook`]).
    pub fn before_identity(mut self, hook: impl Fn(&mut Command) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The log file set with [`PgCtl::log_file`].
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Whether a log file was set with [`PgCtl::log_file`].
    pub fn has_log_file(&self) -> bool {
        self.log.is_some()
    }

    /// `pg_ctl start -D DATA -l LOG -w -t N`, returning once the server accepts connections.
    pub async fn start(&self) -> Result<(), PgCtlError> {
        self.start_like("start", None, None, "start the PostgreSQL server")?.run().await.map(drop)
    }

    /// `pg_ctl start -o OPTIONS`: the server started with these `postgres` options (quoted for a shell, as
    /// pg_ctl passes them through one).
    pub async fn start_with_options(&self, options: &str) -> Result<(), PgCtlError> {
        self.start_like("start", None, Some(options), "start the PostgreSQL server")?.run().await.map(drop)
    }

    /// `pg_ctl start` with the options the server last ran with (`postmaster.opts`, as `pg_ctl restart`
    /// uses them): brings back a server that a failed restart left down, also when its configuration lives
    /// outside the data directory (`-c config_file=…`, as Debian's clusters run). A plain start without
    /// `postmaster.opts`.
    pub async fn start_as_before(&self) -> Result<(), PgCtlError> {
        let opts =
            std::fs::read_to_string(self.data_dir.join("postmaster.opts")).ok().and_then(|l| previous_options(&l));
        self.start_like("start", None, opts.as_deref(), "start the PostgreSQL server")?.run().await.map(drop)
    }

    /// A copy whose start and restart keep the log destination the server has now ([`log_destination`]),
    /// decided once: a start after a failed restart then logs where the restart did, although the server
    /// (whose stderr told where) is gone by then.
    pub fn with_current_log(&self) -> Result<PgCtl, PgCtlError> {
        let mut ctl = self.clone();
        if ctl.log.is_none() {
            ctl.log = Some(log_destination(&self.data_dir, self.identity.as_ref())?);
        }
        Ok(ctl)
    }

    /// `pg_ctl restart` (stop in `mode`, start with the options it last ran with), returning once the server
    /// accepts connections again.
    pub async fn restart(&self, mode: StopMode) -> Result<(), PgCtlError> {
        self.start_like("restart", Some(mode), None, "restart the PostgreSQL server")?.run().await.map(drop)
    }

    /// `pg_ctl stop -m MODE -w -t N`, returning once the server is down.
    pub async fn stop(&self, mode: StopMode) -> Result<(), PgCtlError> {
        self.stop_command(mode).run().await.map(drop)
    }

    /// `pg_ctl reload`: a SIGHUP to the postmaster. It returns at once; the server re-reads its files a
    /// moment later.
    pub async fn reload(&self) -> Result<(), PgCtlError> {
        self.reload_command().run().await.map(drop)
    }

    /// `pg_ctl promote -w -t N`: a standby leaves recovery; returns once it accepts writes.
    pub async fn promote(&self) -> Result<(), PgCtlError> {
        let mut cmd = self.command("promote");
        self.wait_args(&mut cmd);
        self.prepared(cmd, "promote the standby").run().await.map(drop)
    }

    /// `pg_ctl status`.
    pub async fn status(&self) -> Result<Status, PgCtlError> {
        let cmd = self.command("status");
        match self.prepared(cmd, "ask whether the server runs").run().await {
            Ok(out) => Ok(Status::Running { pid: running_pid(&String::from_utf8_lossy(&out.stdout)) }),
            // pg_ctl's documented exit codes: 3 no server running, 4 no accessible data directory.
            Err(PgCtlError::Tool(e)) if e.code() == Some(3) => Ok(Status::Stopped),
            Err(PgCtlError::Tool(e)) if e.code() == Some(4) => Ok(Status::NoDataDir),
            Err(e) => Err(e),
        }
    }

    /// [`PgCtl::start`] for code with no async runtime (the test harness): the same command, run on the
    /// calling thread and not cancellable.
    pub fn start_blocking(&self) -> Result<(), PgCtlError> {
        self.start_like("start", None, None, "start the PostgreSQL server")?.run_blocking().map(drop)
    }

    /// [`PgCtl::stop`] for code with no async runtime (the test harness, a `Drop` that stops a server).
    pub fn stop_blocking(&self, mode: StopMode) -> Result<(), PgCtlError> {
        self.stop_command(mode).run_blocking().map(drop)
    }

    /// [`PgCtl::reload`] for code with no async runtime (the test harness).
    pub fn reload_blocking(&self) -> Result<(), PgCtlError> {
        self.reload_command().run_blocking().map(drop)
    }

    fn stop_command(&self, mode: StopMode) -> Prepared {
        let mut cmd = self.command("stop");
        cmd.args(["-m", mode.as_str()]);
        self.wait_args(&mut cmd);
        self.prepared(cmd, &format!("stop the PostgreSQL server ({mode})"))
    }

    fn reload_command(&self) -> Prepared {
        let cmd = self.command("reload");
        self.prepared(cmd, "reload the server configuration")
    }

    /// A pg_ctl command for `action` on the data directory: `PG*` scrubbed, the hook, then the identity.
    fn command(&self, action: &str) -> Command {
        let mut cmd = scrubbed_command(&self.program);
        cmd.arg(action).arg("-D").arg(&self.data_dir).current_dir(&self.current_dir);
        if let Some(hook) = &self.hook {
            hook(&mut cmd);
        }
        if let Some(identity) = &self.identity {
            identity.apply_to(&mut cmd);
        }
        cmd
    }

    fn wait_args(&self, cmd: &mut Command) {
        cmd.args(["-w", "-t", &self.timeout.as_secs().max(1).to_string()]);
    }

    fn prepared(&self, cmd: Command, what: &str) -> Prepared {
        let limits = Limits { timeout: None, finish_on_interrupt: self.finish_on_interrupt };
        Prepared { cmd, action: format!("{what} in {}", self.data_dir.display()), limits, start_log: None }
    }

    fn start_like(
        &self,
        verb: &str,
        mode: Option<StopMode>,
        opts: Option<&str>,
        what: &str,
    ) -> Result<Prepared, PgCtlError> {
        let log = match &self.log {
            Some(path) => path.clone(),
            None => log_destination(&self.data_dir, self.identity.as_ref())?,
        };
        let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.command(verb);
        cmd.arg("-l").arg(&log);
        if let Some(mode) = mode {
            cmd.args(["-m", mode.as_str()]);
        }
        if let Some(opts) = opts {
            cmd.arg("-o").arg(opts);
        }
        self.wait_args(&mut cmd);
        Ok(Prepared { start_log: Some((log, before)), ..self.prepared(cmd, what) })
    }
}

/// A pg_ctl command ready to run, awaited or on the calling thread: both ways fail alike.
struct Prepared {
    cmd: Command,
    action: String,
    limits: Limits,
    /// For a start: the server log and its length before, to quote what the server logged meanwhile.
    start_log: Option<(PathBuf, u64)>,
}

impl Prepared {
    async fn run(self) -> Result<Output, PgCtlError> {
        let result = qrd_pgbin::run_with(self.cmd, &self.action, self.limits).await;
        finished(result, self.start_log)
    }

    fn run_blocking(mut self) -> Result<Output, PgCtlError> {
        let result = qrd_pgbin::run_blocking(&mut self.cmd, &self.action);
        finished(result, self.start_log)
    }
}

fn finished(result: Result<Output, ToolError>, start_log: Option<(PathBuf, u64)>) -> Result<Output, PgCtlError> {
    match (result, start_log) {
        (Ok(out), _) => Ok(out),
        (Err(source), Some((log, before))) => {
            let log_tail = tail(&read_from(&log, before), LOG_TAIL_LINES);
            Err(PgCtlError::Start { source, log: Some(log), log_tail })
        }
        (Err(e), None) => Err(e.into()),
    }
}

/// The server's arguments in a `postmaster.opts` line (`/usr/lib/postgresql/15/bin/postgres "-D" "/data"
/// "-c" "config_file=…"`): everything after the program, split off where pg_ctl restart splits it (at the
/// first ` "`), still quoted for the shell that pg_ctl starts the server with.
fn previous_options(line: &str) -> Option<String> {
    let line = line.trim_end();
    let at = line.find(" \"")?;
    Some(line[at + 1..].to_owned())
}

/// The pid in pg_ctl status's `pg_ctl: server is running (PID: 1234)`.
fn running_pid(stdout: &str) -> Option<u32> {
    let rest = stdout.split("(PID: ").nth(1)?;
    rest.split(')').next()?.trim().parse().ok()
}

/// What the postmaster of `data_dir` wrote in its `postmaster.pid`: its pid (line 1) and port (line 4).
pub fn postmaster_pid(data_dir: &Path) -> Option<(u32, Option<u16>)> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let port = lines.nth(2).and_then(|l| l.trim().parse().ok());
    Some((pid, port))
}

/// The pid of a postmaster that runs on `data_dir` now: `postmaster.pid` names it and the process exists (a
/// file left by a crashed server names none).
pub fn running_postmaster(data_dir: &Path) -> Option<u32> {
    postmaster_pid(data_dir).map(|(pid, _)| pid).filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Where a server that pg_ctl (re)starts should write its output.
///
/// The running postmaster's stderr when that is a regular file (`/proc/<pid>/fd/2`, as `pg_ctl -l` or a
/// service script left it), so the server goes on logging where it did and where the DBA looks. Otherwise
/// (a pipe to a logging collector or journald, /dev/null, a terminal, a server that is down, a /proc we may
/// not read) a file of our own outside the data directory, `<temp dir>/qrd-pg-<port>.log`, mode 0600,
/// owned by `owner`: nothing of qrd's belongs inside the data directory, and without `-l` the new
/// postmaster would hold pg_ctl's output pipes open for as long as it runs.
pub fn log_destination(data_dir: &Path, owner: Option<&Identity>) -> Result<PathBuf, PgCtlError> {
    log_destination_in(data_dir, owner, &std::env::temp_dir())
}

fn log_destination_in(data_dir: &Path, owner: Option<&Identity>, temp_dir: &Path) -> Result<PathBuf, PgCtlError> {
    let pid_file = postmaster_pid(data_dir);
    if let Some((pid, _)) = pid_file
        && let Some(path) = stderr_file(pid)
    {
        tracing::debug!(log = %path.display(), pid, "the server keeps logging to its current stderr file");
        return Ok(path);
    }
    // Named after the port, or when the server is down (no postmaster.pid) after the data directory, so
    // two servers never share one.
    let stem = match pid_file.and_then(|(_, port)| port) {
        Some(port) => format!("qrd-pg-{port}"),
        None => format!("qrd-pg{}", data_dir.to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric(), "-")),
    };
    let path = own_log_file(temp_dir, &stem, owner)?;
    tracing::info!(
        log = %path.display(),
        "the server's stderr is not a log file qrd can hand on; its output while starting goes to {}",
        path.display()
    );
    Ok(path)
}

/// The regular file `pid`'s stderr points to, if it still exists under that name.
fn stderr_file(pid: u32) -> Option<PathBuf> {
    let fd = PathBuf::from(format!("/proc/{pid}/fd/2"));
    let meta = std::fs::metadata(&fd).ok()?; // follows the link to the open file itself
    if !meta.is_file() {
        return None;
    }
    let path = std::fs::read_link(&fd).ok()?;
    // A deleted or replaced file reads as "… (deleted)" or names another file now: same inode or nothing.
    let named = std::fs::metadata(&path).ok()?;
    (path.is_absolute() && named.dev() == meta.dev() && named.ino() == meta.ino()).then_some(path)
}

/// Creates (or reuses) our log file `<stem>.log` in the temp directory and hands it to `owner`, who writes
/// to it through pg_ctl. A file of that name belonging to someone else (another server's owner) is left
/// alone and `<stem>.1.log`, `<stem>.2.log` … tried instead.
fn own_log_file(temp_dir: &Path, stem: &str, owner: Option<&Identity>) -> Result<PathBuf, PgCtlError> {
    let mut last = None;
    for n in 0..10 {
        let name = if n == 0 { format!("{stem}.log") } else { format!("{stem}.{n}.log") };
        let path = temp_dir.join(name);
        match open_log_file(&path, owner) {
            Ok(()) => return Ok(path),
            Err(e @ PgCtlError::Log { .. }) if is_foreign(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("the loop ran"))
}

fn is_foreign(e: &PgCtlError) -> bool {
    // ELOOP: O_NOFOLLOW met a symbolic link; PermissionDenied: another user's file (ours, below) or one we
    // may not open.
    matches!(e, PgCtlError::Log { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(nix::libc::ELOOP))
}

/// Opens `path` for appending without following a link another user may have planted there (the temp
/// directory is shared), creating it 0600, and makes it `owner`'s.
fn open_log_file(path: &Path, owner: Option<&Identity>) -> Result<(), PgCtlError> {
    let err = |source| PgCtlError::Log { path: path.to_owned(), source };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    let me = nix::unistd::geteuid().as_raw();
    let owner_uid = owner.map(Identity::uid).unwrap_or(me);
    if !meta.is_file() || (meta.uid() != me && meta.uid() != owner_uid) {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "it exists and belongs to uid {}, not to the server's owner; remove it or move it away",
                meta.uid()
            ),
        )));
    }
    if let Some(owner) = owner
        && meta.uid() != owner.uid()
    {
        std::os::unix::fs::fchown(&file, Some(owner.uid()), Some(owner.gid())).map_err(err)?;
    }
    Ok(())
}

/// The part of `path` after its first `from` bytes (what a command added), lossily decoded.
fn read_from(path: &Path, from: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let from = if f.metadata().map(|m| m.len()).unwrap_or(0) < from { 0 } else { from };
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let _ = f.read_to_end(&mut buf);
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_options_are_what_follows_the_program() {
        let line = "/usr/lib/postgresql/15/bin/postgres \"-D\" \"/var/lib/postgresql/15/main\" \"-c\" \"config_file=/etc/postgresql/15/main/postgresql.conf\"\n";
        assert_eq!(
            previous_options(line).as_deref(),
            Some(
                "\"-D\" \"/var/lib/postgresql/15/main\" \"-c\" \"config_file=/etc/postgresql/15/main/postgresql.conf\""
            )
        );
        assert_eq!(previous_options("/usr/bin/postgres\n"), None);
    }

    #[test]
    fn status_output_gives_the_pid() {
        assert_eq!(running_pid("pg_ctl: server is running (PID: 4242)\n/usr/bin/postgres \"-D\" \"x\"\n"), Some(4242));
        assert_eq!(running_pid("pg_ctl: no server running\n"), None);
    }

    #[test]
    fn postmaster_pid_file_lines() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(postmaster_pid(t.path()), None);
        std::fs::write(t.path().join("postmaster.pid"), "4242\n/data\n1700000000\n5433\n/run/postgresql\n").unwrap();
        assert_eq!(postmaster_pid(t.path()), Some((4242, Some(5433))));
    }

    /// Our own process's stderr under nextest/cargo test is a pipe or a terminal, never a regular file:
    /// then the log goes to a private file in the temp directory, never into the data directory.
    #[test]
    fn a_server_without_a_log_file_gets_one_outside_the_data_directory() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let tmp = t.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        // A pid whose stderr is not a file: a child with stderr on /dev/null.
        let mut child = Command::new("sleep").arg("30").stderr(std::process::Stdio::null()).spawn().unwrap();
        std::fs::write(data.join("postmaster.pid"), format!("{}\n{}\n1\n6543\n", child.id(), data.display())).unwrap();
        let log = log_destination_in(&data, None, &tmp).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(log, tmp.join("qrd-pg-6543.log"));
        let meta = std::fs::metadata(&log).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert!(!log.starts_with(&data));

        // A link planted under that name is not followed: another name is used.
        std::fs::remove_file(&log).unwrap();
        std::os::unix::fs::symlink(t.path().join("victim"), &log).unwrap();
        let other = log_destination_in(&data, None, &tmp).unwrap();
        assert_eq!(other, tmp.join("qrd-pg-6543.1.log"));
        assert!(!t.path().join("victim").exists());

        // A server that is down is named after its data directory.
        std::fs::remove_file(data.join("postmaster.pid")).unwrap();
        let down = log_destination_in(&data, None, &tmp).unwrap();
        let name = down.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("qrd-pg-") && name.ends_with("-data.log"), "{name}");
    }

    /// A postmaster started with `pg_ctl -l FILE` keeps that file.
    #[test]
    fn a_server_logging_to_a_file_keeps_it() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let log = t.path().join("server.log");
        let file = File::create(&log).unwrap();
        let mut child = Command::new("sleep").arg("30").stderr(file).spawn().unwrap();
        std::fs::write(data.join("postmaster.pid"), format!("{}\n{}\n1\n6544\n", child.id(), data.display())).unwrap();
        let found = log_destination(&data, None);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.unwrap(), log);
    }

    #[tokio::test]
    async fn a_failed_start_quotes_the_new_log_lines() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("server.log");
        std::fs::write(&log, "old line\n").unwrap();
        // A stand-in for pg_ctl that logs and fails the way pg_ctl does.
        let fake = t.path().join("pg_ctl");
        std::fs::write(
            &fake,
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -l ] && log=$2; shift; done\n\
             echo 'FATAL:  could not access private key file' >> \"$log\"\n\
             echo 'waiting for server to start.... stopped waiting'\necho 'pg_ctl: could not start server' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let ctl = PgCtl::new(&fake, t.path().join("data")).log_file(&log);
        let err = ctl.start().await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("failed to start the PostgreSQL server in {}", t.path().join("data").display())),
            "{msg}"
        );
        assert!(msg.contains("exited with status 1"), "{msg}");
        assert!(msg.contains("pg_ctl: could not start server"), "{msg}");
        assert!(msg.contains("FATAL:  could not access private key file"), "{msg}");
        assert!(!msg.contains("old line"), "{msg}");
        assert!(msg.contains(&format!("start -D {}", t.path().join("data").display())), "{msg}");
        // The harness's blocking start fails in the same words.
        assert_eq!(ctl.start_blocking().unwrap_err().to_string(), msg);
    }
}
