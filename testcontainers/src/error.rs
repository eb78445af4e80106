//! The harness's one error type: every message says what failed, the command run and its stderr, and what
//! to do next.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

use qrd_pgbin::{FindError, Tool};

const INSTALL_HINT: &str = "hint: run `cargo make pg-install` (or testcontainers/install-postgres.sh) to install the \
                            PostgreSQL servers and client tools the tests use";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("failed to read the PostgreSQL manifest {path}: {reason}\n\n{INSTALL_HINT}", path = path.display())]
    Manifest { path: PathBuf, reason: String },

    #[error(
        "failed to find PostgreSQL {major} in the manifest {path} (it lists: {available})\n\n{INSTALL_HINT}",
        path = path.display()
    )]
    MissingMajor { major: u32, path: PathBuf, available: String },

    #[error("failed to find {tool} for PostgreSQL {major}: {source}\n\n{INSTALL_HINT}")]
    Tool { major: u32, tool: Tool, source: FindError },

    #[error("failed to {action}: `{command}` {status}{output}")]
    Command { action: String, command: String, status: String, output: String },

    #[error("failed to {action}: could not run `{command}`: {source}")]
    Spawn { action: String, command: String, source: std::io::Error },

    #[error("failed to {action} {path}: {source}", path = path.display())]
    Io { action: String, path: PathBuf, source: std::io::Error },

    #[error(
        "refusing {addr} as {what}: only loopback addresses (127.0.0.0/8, ::1) may be used; traffic to any other \
         address leaves this machine"
    )]
    NotLoopback { addr: IpAddr, what: &'static str },

    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },

    /// The server did not start; `log_excerpt` holds the end of its log, delimited and named.
    #[error(
        "failed to start PostgreSQL {major} (data {data}, port {port}): `{command}` {outcome}\n{log_excerpt}",
        data = data.display()
    )]
    Start { major: u32, data: PathBuf, port: u16, command: String, outcome: String, log_excerpt: String },

    #[error("failed to {action} on PostgreSQL {major} (socket dir {socket}, port {port}): {message}", socket = socket.display())]
    Sql { action: String, major: u32, socket: PathBuf, port: u16, message: String },

    #[error("failed to {action}: {reason}")]
    Unsupported { action: String, reason: String },
}

impl HarnessError {
    pub(crate) fn io(action: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action: action.into(), path: path.into(), source }
    }
}

/// `program arg …` for messages and logs; arguments with spaces or quotes are quoted. Never holds secrets:
/// passwords travel through files and the environment, not argv.
pub(crate) fn display_command(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// "exited with status 1" and the captured stdout/stderr, indented, for an error message.
pub(crate) fn describe_output(out: &Output) -> (String, String) {
    let status = match out.status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was killed ({})", out.status),
    };
    let mut text = String::new();
    for (name, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        let s = String::from_utf8_lossy(bytes);
        let s = s.trim_end();
        if !s.is_empty() {
            text.push_str(&format!("\n{name}:\n"));
            for line in s.lines() {
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    if text.is_empty() {
        text.push_str(" (no output)");
    }
    (status, text.trim_end().to_owned())
}

/// Runs `cmd` to completion; a spawn failure or a non-zero exit becomes an error naming `action`.
pub(crate) fn run(cmd: &mut Command, action: &str) -> Result<Output, HarnessError> {
    let command = display_command(cmd);
    tracing::debug!(%command, "running");
    let out = cmd.output().map_err(|source| HarnessError::Spawn {
        action: action.to_owned(),
        command: command.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(out);
    }
    let (status, output) = describe_output(&out);
    Err(HarnessError::Command { action: action.to_owned(), command, status, output })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_for_copy_and_paste() {
        let mut cmd = Command::new("/usr/bin/pg_ctl");
        cmd.args(["-D", "/tmp/a b", "-o", "-p 5432", "it's"]);
        assert_eq!(display_command(&cmd), r"/usr/bin/pg_ctl -D '/tmp/a b' -o '-p 5432' 'it'\''s'");
    }
}
