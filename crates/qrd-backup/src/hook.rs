//! `--before` / `--after` commands: the DBA's own (stop the Qlik services for a set consistent across the
//! four databases, as the guide advises, and start them again), run through `/bin/sh -c` with a timeout.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::manifest::{HookRun, HookStage};

/// A hook as given.
#[derive(Debug, Clone)]
pub struct Hook {
    pub command: String,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("the {stage} hook `{command}` could not start: {source}")]
    Spawn { stage: &'static str, command: String, source: std::io::Error },
    #[error("the {stage} hook `{command}` ran past its timeout of {} s and was killed{}", timeout.as_secs(), output(stderr))]
    Timeout { stage: &'static str, command: String, timeout: Duration, stderr: String },
    #[error("the {stage} hook `{command}` failed ({status}){}", output(stderr))]
    Failed { stage: &'static str, command: String, status: String, stderr: String },
}

fn output(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() { String::new() } else { format!(": {s}") }
}

fn stage_name(stage: HookStage) -> &'static str {
    match stage {
        HookStage::Before => "--before",
        HookStage::After => "--after",
    }
}

/// Runs `hook`; returns what the manifest records, and an error when it failed or timed out.
pub fn run(hook: &Hook, stage: HookStage) -> (HookRun, Result<(), HookError>) {
    let started_utc = OffsetDateTime::now_utc();
    let started = Instant::now();
    let stage_text = stage_name(stage);
    tracing::info!("running the {stage_text} hook: {}", hook.command);
    let record = |exit_code: Option<i32>, timed_out: bool| HookRun {
        stage,
        command: hook.command.clone(),
        started_utc,
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code,
        timed_out,
    };
    // Its own process group, so that a timeout stops what the hook started too (a `sleep` under the
    // shell would otherwise keep running, and keep its stderr open).
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&hook.command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(source) => {
            let err = HookError::Spawn { stage: stage_text, command: hook.command.clone(), source };
            return (record(None, false), Err(err));
        }
    };
    // stderr is read on its own thread, so a chatty hook cannot fill the pipe and stall.
    let mut pipe = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let deadline = started + hook.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let group = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stderr = reader.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => (record(s.code(), false), Ok(())),
        Some(s) => {
            let err = HookError::Failed {
                stage: stage_text,
                command: hook.command.clone(),
                status: s.code().map(|c| format!("exit status {c}")).unwrap_or_else(|| s.to_string()),
                stderr,
            };
            (record(s.code(), false), Err(err))
        }
        None => {
            let err =
                HookError::Timeout { stage: stage_text, command: hook.command.clone(), timeout: hook.timeout, stderr };
            (record(None, true), Err(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_failure_and_timeout_are_told_apart() {
        let hook = |c: &str, secs| Hook { command: c.to_owned(), timeout: Duration::from_secs(secs) };
        let (rec, r) = run(&hook("true", 5), HookStage::Before);
        r.unwrap();
        assert!(rec.exit_code == Some(0) && !rec.timed_out, "{rec:?}");
        let (rec, r) = run(&hook("echo stopping failed >&2; exit 3", 5), HookStage::Before);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("exit status 3") && e.contains("stopping failed"), "{e}");
        assert_eq!(rec.exit_code, Some(3));
        let (rec, r) = run(&hook("sleep 30", 1), HookStage::After);
        assert!(matches!(r, Err(HookError::Timeout { .. })), "{r:?}");
        assert!(rec.timed_out && rec.duration_ms < 10_000);
    }
}
