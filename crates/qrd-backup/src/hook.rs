//! `--before` / `--after` commands: the DBA's own (stop the Qlik services for a set consistent across the
//! four databases, as the guide advises, and start them again), run through `/bin/sh -c` with a timeout.

use std::process::Command;
use std::time::{Duration, Instant};

use qrd_pgbin::{Limits, ToolError};

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
    #[error("the {stage} hook `{command}` was stopped because qrd received {signal}{}", output(stderr))]
    Interrupted { stage: &'static str, command: String, signal: String, stderr: String },
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

/// Runs `hook` through the one runner (its own process group, so a timeout or an interruption stops what
/// the hook started too: a `sleep` under the shell would otherwise keep running, and keep its stderr
/// open); returns what the manifest records, and an error when it failed or timed out.
pub async fn run(hook: &Hook, stage: HookStage) -> (HookRun, Result<(), HookError>) {
    let started_utc = OffsetDateTime::now_utc();
    let started = Instant::now();
    let stage_text = stage_name(stage);
    tracing::info!("running the {stage_text} hook: {}", hook.command);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&hook.command);
    // The --after hook starts the Qlik services again: it runs to its end even when the backup was
    // interrupted (within its timeout).
    let limits = Limits { timeout: Some(hook.timeout), finish_on_interrupt: stage == HookStage::After };
    let result = qrd_pgbin::run_with(cmd, &format!("run the {stage_text} hook"), limits).await;
    let record = |exit_code: Option<i32>, timed_out: bool| HookRun {
        stage,
        command: hook.command.clone(),
        started_utc,
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code,
        timed_out,
    };
    let command = hook.command.clone();
    match result {
        Ok(_) => (record(Some(0), false), Ok(())),
        Err(ToolError::Spawn { source, .. }) => {
            (record(None, false), Err(HookError::Spawn { stage: stage_text, command, source }))
        }
        Err(ToolError::Timeout { stderr, .. }) => {
            let err = HookError::Timeout { stage: stage_text, command, timeout: hook.timeout, stderr };
            (record(None, true), Err(err))
        }
        Err(ToolError::Interrupted { signal, stderr, .. }) => {
            (record(None, false), Err(HookError::Interrupted { stage: stage_text, command, signal, stderr }))
        }
        Err(ToolError::Exit { status, stderr, .. }) => {
            let err = HookError::Failed {
                stage: stage_text,
                command,
                status: status.code().map(|c| format!("exit status {c}")).unwrap_or_else(|| status.to_string()),
                stderr,
            };
            (record(status.code(), false), Err(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_failure_and_timeout_are_told_apart() {
        let hook = |c: &str, secs| Hook { command: c.to_owned(), timeout: Duration::from_secs(secs) };
        let (rec, r) = run(&hook("true", 5), HookStage::Before).await;
        r.unwrap();
        assert!(rec.exit_code == Some(0) && !rec.timed_out, "{rec:?}");
        let (rec, r) = run(&hook("echo stopping failed >&2; exit 3", 5), HookStage::Before).await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("exit status 3") && e.contains("stopping failed"), "{e}");
        assert_eq!(rec.exit_code, Some(3));
        let (rec, r) = run(&hook("sleep 30", 1), HookStage::After).await;
        assert!(matches!(r, Err(HookError::Timeout { .. })), "{r:?}");
        assert!(rec.timed_out && rec.duration_ms < 10_000);
    }
}
