//! The harness's one error type: every message says what failed, the command run and its stderr, and what
//! to do next.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

use qrd_pgbin::{FindError, Tool, ToolError};
use qrd_server::PgCtlError;

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

    /// A command that could not be run or failed: the action, the command line and the tool's output.
    #[error(transparent)]
    Command(#[from] ToolError),

    /// As [`HarnessError::Command`], with the next step.
    #[error("{source}\n\nhint: {hint}")]
    CommandHint { source: ToolError, hint: &'static str },

    /// pg_ctl could not be prepared or failed (other than a start, which is [`HarnessError::Start`]).
    #[error(transparent)]
    PgCtl(#[from] PgCtlError),

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

    /// The fixture site (`sql/fixtures/`) cannot be loaded on this server as it is.
    #[error("failed to load the fixture site on PostgreSQL {major} (port {port}): {reason}\n\nhint: {hint}")]
    Fixture { major: u32, port: u16, reason: String, hint: &'static str },
}

impl HarnessError {
    pub(crate) fn io(action: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action: action.into(), path: path.into(), source }
    }
}

/// Runs `cmd` to completion through the product's one tool runner; a spawn failure or a non-zero exit
/// becomes an error naming `action`, the command and its output.
pub(crate) fn run(cmd: &mut Command, action: &str) -> Result<Output, HarnessError> {
    Ok(qrd_pgbin::run_blocking(cmd, action)?)
}
