//! The one way qrd runs a child program (pg_dump, pg_restore, pg_basebackup, pg_rewind, pg_ctl,
//! pg_amcheck, the DBA's hooks …): killable, bounded in time, and never left behind.
//!
//! Every child gets a process group of its own, so that stopping it also stops what it started (pg_dump's
//! `--jobs` workers, the `sleep` under a hook's shell). The group is killed when
//! - the child runs past its timeout ([`ToolError::Timeout`]),
//! - qrd receives Ctrl-C or SIGTERM once the CLI has taken them over ([`crate::interrupt`];
//!   [`ToolError::Interrupted`]), so the command unwinds through its usual error path and cleans up,
//! - the future running it is dropped: qrd interrupted by Ctrl-C or SIGTERM (the CLI drops the command's
//!   future), a `select!` that lost, a `tokio::time::timeout` around a caller;
//! - qrd itself dies, even by SIGKILL: the child asks the kernel for SIGKILL when its parent goes
//!   (`PR_SET_PDEATHSIG`; Linux). Programs that detach on purpose (pg_ctl's postmaster calls setsid) are
//!   not in the group and keep running, which is what `pg_ctl start` means.
//!
//! The child's stdin is `/dev/null` (a tool that wants a password must never wait on the terminal), its
//! stdout and stderr are captured for the caller and for the error message.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

use crate::run::ToolError;
use crate::shell::display_command;

/// After the child exits, how long its output may still take to reach EOF. A grandchild that outlives the
/// child (a daemon that kept our pipe) must not hold qrd forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Runs `cmd` to completion (no time limit), capturing its output; a spawn failure or a non-zero exit becomes
/// a [`ToolError`] naming `action` (a lowercase fragment: "dump the roles", "start the server").
///
/// The full command is logged at debug level. It holds no secret because none is ever put in argv:
/// passwords reach children through a [`crate::Passfile`] or the child's own environment.
pub async fn run(cmd: Command, action: &str) -> Result<Output, ToolError> {
    run_with(cmd, action, Limits::default()).await
}

/// How a run may end early.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Past it the child's process group is killed and the result is [`ToolError::Timeout`].
    pub timeout: Option<Duration>,
    /// Let the child finish when qrd is interrupted: for what puts things back (the `--after` hook that
    /// starts the Qlik services again must still run when the backup itself was stopped). The timeout
    /// still holds.
    pub finish_on_interrupt: bool,
}

impl Limits {
    pub fn timeout(timeout: Duration) -> Self {
        Limits { timeout: Some(timeout), finish_on_interrupt: false }
    }
}

/// [`run`] with [`Limits`].
pub async fn run_with(mut cmd: Command, action: &str, limits: Limits) -> Result<Output, ToolError> {
    let timeout = limits.timeout;
    let command = display_command(&cmd);
    tracing::debug!(%command, action, "running");
    prepare(&mut cmd);
    let mut cmd = tokio::process::Command::from(cmd);
    // The direct child goes with the future even if the group kill below could not be sent.
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| ToolError::spawn(action, command.clone(), source))?;
    let mut group = GroupGuard::new(child.id());
    let stdout = Captured::start(child.stdout.take());
    let stderr = Captured::start(child.stderr.take());

    let limit = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let waited = tokio::select! {
        status = child.wait() => Ok(status),
        _ = limit => Err(None),
        signal = crate::interrupt::interrupted(), if !limits.finish_on_interrupt => Err(Some(signal)),
    };
    let status = match waited {
        Ok(status) => {
            // It exited by itself: what it left running in its group is its business (a hook may start
            // a service on purpose).
            group.disarm();
            status.map_err(|source| ToolError::spawn(action, command.clone(), source))?
        }
        Err(why) => {
            group.kill();
            let _ = child.wait().await;
            let (stdout, stderr) = collect(stdout, stderr).await;
            let (stdout, stderr) =
                (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned());
            let action = action.to_owned();
            return Err(match why {
                Some(signal) => {
                    tracing::debug!(%command, "stopped: qrd was interrupted by {signal}");
                    ToolError::Interrupted { action, command, signal: signal.as_str().to_owned(), stdout, stderr }
                }
                None => {
                    tracing::debug!(%command, "killed after its timeout");
                    ToolError::Timeout { action, command, timeout: timeout.unwrap_or_default(), stdout, stderr }
                }
            });
        }
    };
    let (stdout, stderr) = collect(stdout, stderr).await;
    let out = Output { status, stdout, stderr };
    finish(action, command, out)
}

/// The same run for code with no async runtime to await on: the test harness, `Drop` implementations, a
/// program's last cleanup. Same process group, parent-death signal, stdin and capture as [`run`]; it cannot
/// be cancelled, so product code that may run long (dumps, restores, copies) uses [`run`].
pub fn run_blocking(cmd: &mut Command, action: &str) -> Result<Output, ToolError> {
    let command = display_command(cmd);
    tracing::debug!(%command, action, "running");
    prepare(cmd);
    let mut child = cmd.spawn().map_err(|source| ToolError::spawn(action, command.clone(), source))?;
    // Both pipes are drained on threads of their own, so a chatty child cannot fill one and stall.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let captured = Captured::default();
        let sink = captured.clone();
        let thread = std::thread::spawn(move || {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                sink.0.lock().expect("not poisoned").extend_from_slice(&chunk[..n]);
            }
        });
        (captured, thread)
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = child.wait().map_err(|source| ToolError::spawn(action, command.clone(), source))?;
    // As in `run`: output that does not reach EOF soon after the exit is left behind.
    let deadline = std::time::Instant::now() + OUTPUT_GRACE;
    while !(stdout.1.is_finished() && stderr.1.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = Output { status, stdout: stdout.0.take(), stderr: stderr.0.take() };
    finish(action, command, out)
}

fn finish(action: &str, command: String, out: Output) -> Result<Output, ToolError> {
    tracing::debug!(%command, status = %out.status, "finished");
    if out.status.success() { Ok(out) } else { Err(ToolError::exited(action, command, &out)) }
}

/// The child's own process group, the parent-death signal, no stdin, captured output.
fn prepare(cmd: &mut Command) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let parent = Pid::this();
    // SAFETY: prctl and getppid are async-signal-safe system calls and nothing is allocated. This hook is
    // added last, so it runs after any identity switch (`Identity::apply`): a credential change clears the
    // parent-death signal, so setting it earlier would not hold.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent may have died between fork and prctl: then no signal would ever come.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("qrd exited while starting the program"));
            }
            Ok(())
        });
    }
}

/// The child's output as it arrives; shared so that what was read is kept even when EOF never comes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Reads `pipe` to its end in a task of its own; the handle ends at EOF.
    fn start<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> (Self, tokio::task::JoinHandle<()>) {
        let captured = Captured::default();
        let sink = captured.clone();
        let task = tokio::spawn(async move {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                sink.0.lock().expect("not poisoned").extend_from_slice(&chunk[..n]);
            }
        });
        (captured, task)
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().expect("not poisoned"))
    }
}

/// Both outputs, once they reached EOF or [`OUTPUT_GRACE`] passed.
async fn collect(
    (out, out_task): (Captured, tokio::task::JoinHandle<()>),
    (err, err_task): (Captured, tokio::task::JoinHandle<()>),
) -> (Vec<u8>, Vec<u8>) {
    let both = async {
        let _ = out_task.await;
        let _ = err_task.await;
    };
    // Still open after the grace: a detached grandchild holds the pipe; keep what came.
    let _ = tokio::time::timeout(OUTPUT_GRACE, both).await;
    (out.take(), err.take())
}

/// Kills the child's process group when dropped, unless the child was seen to exit by itself.
struct GroupGuard {
    group: Option<Pid>,
}

impl GroupGuard {
    fn new(pid: Option<u32>) -> Self {
        Self { group: pid.map(|p| Pid::from_raw(p as i32)) }
    }

    fn disarm(&mut self) {
        self.group = None;
    }

    fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            // ESRCH (already gone) is fine.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            tracing::debug!(%group, "stopping the process group of an abandoned run");
        }
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    /// Whether a process with this pid exists (zombies count as gone: they run nothing).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    /// Polls `cond` for up to ten seconds.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cond()
    }

    #[tokio::test]
    async fn output_status_and_failure_text() {
        let out = run(sh("echo fine; echo note >&2"), "succeed").await.unwrap();
        assert_eq!(out.stdout, b"fine\n");
        assert_eq!(out.stderr, b"note\n");
        let err = run(sh("echo out; echo 'err one' >&2; exit 3"), "try things").await.unwrap_err();
        assert_eq!(err.code(), Some(3));
        assert_eq!(
            err.to_string(),
            "failed to try things: `sh -c 'echo out; echo '\\''err one'\\'' >&2; exit 3'` exited with status 3\
             \nstderr:\n  err one\n\nstdout:\n  out"
        );
        let err = run(Command::new("/nonexistent/tool"), "run a missing tool").await.unwrap_err();
        assert!(matches!(err, ToolError::Spawn { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn stdin_is_empty_so_nothing_waits_on_the_terminal() {
        let out = run(sh("cat; echo done"), "read stdin").await.unwrap();
        assert_eq!(out.stdout, b"done\n");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group_and_keeps_what_was_said() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The shell starts a grandchild and waits for it; the timeout must stop both.
        let script = format!("echo started >&2; sleep 300 & echo $! > {}; wait", pidfile.display());
        let started = Instant::now();
        let err = run_with(sh(&script), "wait forever", Limits::timeout(Duration::from_millis(500))).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(60));
        match &err {
            ToolError::Timeout { timeout, stderr, .. } => {
                assert_eq!(*timeout, Duration::from_millis(500));
                assert_eq!(stderr.trim(), "started");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(err.to_string().starts_with("failed to wait forever: `sh -c"), "{err}");
        assert!(err.to_string().contains("ran past its timeout of 0.5 s and was stopped"), "{err}");
        let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        assert!(eventually(|| !alive(grandchild)), "the grandchild {grandchild} outlived the timeout");
    }

    #[tokio::test]
    async fn a_dropped_run_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let run = run(sh(&script), "be abandoned");
        // The caller gives up (as a Ctrl-C does, through the CLI dropping the command's future).
        match tokio::time::timeout(Duration::from_millis(500), run).await {
            Err(tokio::time::error::Elapsed { .. }) => {}
            Ok(ended) => panic!("the run should still have been going, but it ended: {ended:?}"),
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        assert!(eventually(|| !alive(grandchild)), "the grandchild {grandchild} outlived the dropped run");
    }

    #[tokio::test]
    async fn a_detached_grandchild_holding_the_pipe_does_not_hold_the_run() {
        // setsid: like pg_ctl's postmaster, out of the group on purpose, and keeping stdout open.
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("setsid sleep 30 & echo $! > {}; echo parent", pidfile.display());
        let out = run(sh(&script), "leave a daemon").await.unwrap();
        assert_eq!(out.stdout, b"parent\n");
        let daemon: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // It exited by itself, so its detached child is left alone.
        assert!(alive(daemon));
        let _ = nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGKILL);
    }

    #[test]
    fn the_blocking_run_reads_and_fails_alike() {
        let out = run_blocking(&mut sh("echo fine"), "succeed").unwrap();
        assert_eq!(out.stdout, b"fine\n");
        let err = run_blocking(&mut sh("echo bad >&2; exit 1"), "fail").unwrap_err();
        assert_eq!(err.code(), Some(1));
        assert!(err.to_string().ends_with("exited with status 1\nstderr:\n  bad"), "{err}");
    }

    /// The middle process of the next test: this test binary run again, told by the environment to run
    /// a child through `run_blocking` and wait.
    #[test]
    fn middle_process() {
        if let Ok(script) = std::env::var("QRD_RUNNER_TEST_MIDDLE") {
            let _ = run_blocking(&mut sh(&script), "outlive nothing");
        }
    }

    #[test]
    fn children_die_with_their_parent_even_by_sigkill() {
        // Killing the middle process with SIGKILL (no destructor runs) must still take its child with it.
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("echo $$ > {}.tmp && mv {0}.tmp {0}; exec sleep 300", pidfile.display());
        let mut middle = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "runner::tests::middle_process", "--nocapture"])
            .env("QRD_RUNNER_TEST_MIDDLE", &script)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(eventually(|| pidfile.exists()), "the middle process never started its child");
        let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        assert!(alive(grandchild));
        middle.kill().unwrap();
        middle.wait().unwrap();
        assert!(eventually(|| !alive(grandchild)), "the child {grandchild} outlived its killed parent");
    }
}
