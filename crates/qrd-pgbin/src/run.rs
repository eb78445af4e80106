//! Running PostgreSQL tools (and the few system tools qrd drives, such as pg_ctlcluster and systemctl): a
//! clean environment, secrets only through a private passfile, the full command logged, and a failure that
//! names what was being done, the command and everything the child said.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use qrd_exit::UserError;

/// A tool that could not be run or did not succeed. The message reads `failed to {action}: `{command}`
/// exited with status N` followed by the child's stderr and stdout, indented, so the person at the console
/// sees the tool's own words (pg_ctl's "could not start server", the server's FATAL line …).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("failed to {action}: could not run `{command}`: {source}")]
    Spawn {
        action: String,
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to {action}: `{command}` {}{}", describe_status(*status), indented_output(stdout, stderr))]
    Exit { action: String, command: String, status: ExitStatus, stdout: String, stderr: String },

    /// It ran past the caller's time limit; its process group was killed.
    #[error("failed to {action}: `{command}` ran past its timeout of {} and was stopped{}", seconds(*timeout), indented_output(stdout, stderr))]
    Timeout { action: String, command: String, timeout: Duration, stdout: String, stderr: String },

    /// qrd was interrupted (Ctrl-C, SIGTERM) while it ran; its process group was killed.
    #[error(
        "failed to {action}: `{command}` was stopped because qrd received {signal}{}",
        indented_output(stdout, stderr)
    )]
    Interrupted { action: String, command: String, signal: String, stdout: String, stderr: String },
}

/// `0.5 s`, `30 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

impl ToolError {
    /// A run that ended with `output` (whatever its status): for callers that start the child themselves.
    pub fn exited(action: impl Into<String>, command: impl Into<String>, output: &Output) -> Self {
        ToolError::Exit {
            action: action.into(),
            command: command.into(),
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn spawn(action: impl Into<String>, command: impl Into<String>, source: std::io::Error) -> Self {
        ToolError::Spawn { action: action.into(), command: command.into(), source }
    }

    /// What was being done (`start the server`), as given to [`run`].
    pub fn action(&self) -> &str {
        match self {
            ToolError::Spawn { action, .. }
            | ToolError::Exit { action, .. }
            | ToolError::Timeout { action, .. }
            | ToolError::Interrupted { action, .. } => action,
        }
    }

    /// The command line as printed in the message.
    pub fn command(&self) -> &str {
        match self {
            ToolError::Spawn { command, .. }
            | ToolError::Exit { command, .. }
            | ToolError::Timeout { command, .. }
            | ToolError::Interrupted { command, .. } => command,
        }
    }

    /// The exit code, when the tool ran and exited (not when it was killed by a signal or never started).
    pub fn code(&self) -> Option<i32> {
        match self {
            ToolError::Exit { status, .. } => status.code(),
            ToolError::Spawn { .. } | ToolError::Timeout { .. } | ToolError::Interrupted { .. } => None,
        }
    }

    /// Whether it was stopped for running past its time limit.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ToolError::Timeout { .. })
    }

    /// `exited with status 1` / `was killed (…)` and the indented output, or the spawn failure: the part
    /// of the message after the command, for callers that word the rest of their message themselves.
    pub fn outcome(&self) -> String {
        match self {
            ToolError::Exit { status, stdout, stderr, .. } => {
                format!("{}{}", describe_status(*status), indented_output(stdout, stderr))
            }
            ToolError::Timeout { timeout, stdout, stderr, .. } => {
                format!(
                    "ran past its timeout of {} and was stopped{}",
                    seconds(*timeout),
                    indented_output(stdout, stderr)
                )
            }
            ToolError::Interrupted { signal, stdout, stderr, .. } => {
                format!("was stopped because qrd received {signal}{}", indented_output(stdout, stderr))
            }
            ToolError::Spawn { source, .. } => format!("could not be run: {source}"),
        }
    }
}

impl UserError for ToolError {
    /// A tool that failed or could not run failed the command while it worked; the caller's error, which
    /// wraps this one, says what that means for what it was doing.
    fn exit_status(&self) -> qrd_exit::ExitStatus {
        qrd_exit::ExitStatus::Failed
    }

    fn hint(&self) -> Option<String> {
        match self {
            ToolError::Spawn { .. } => Some("check that the program is installed and executable by this user".into()),
            ToolError::Exit { .. } => None,
            ToolError::Timeout { .. } => Some(
                "it was stopped with everything it started; find what held it up (the lines above, the server log)"
                    .into(),
            ),
            ToolError::Interrupted { .. } => {
                Some("it was stopped with everything it started; run the command again when it can finish".into())
            }
        }
    }
}

/// `exited with status N`, or how the child was killed.
pub fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("was killed ({status})"),
    }
}

/// The child's stderr then stdout, each under its name and indented two spaces, starting on a new line;
/// ` (no output)` when both are empty.
pub fn indented_output(stdout: &str, stderr: &str) -> String {
    let mut text = String::new();
    for (name, s) in [("stderr", stderr), ("stdout", stdout)] {
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
    text.trim_end().to_owned()
}

/// [`describe_status`] and [`indented_output`] of a finished child.
pub fn describe_output(out: &Output) -> (String, String) {
    (
        describe_status(out.status),
        indented_output(&String::from_utf8_lossy(&out.stdout), &String::from_utf8_lossy(&out.stderr)),
    )
}

/// A `Command` for a PostgreSQL program with every `PG*` variable of our own environment removed, so
/// nothing (PGPASSWORD, PGSERVICE, PGOPTIONS, a stray PGSSLMODE …) reaches the child by accident, and
/// qrd's own password variables (`QRD_…PASSWORD…`): a child, often running as the server's user, gets a
/// password through a private passfile only, never in its environment. Callers set what they mean
/// explicitly.
pub fn scrubbed_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PG") || (k.starts_with("QRD_") && k.contains("PASSWORD"))) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A libpq password file holding one password, readable only by us (mode 0600), removed on drop.
///
/// This is how a password reaches a child process: never argv (visible in `ps` and /proc/*/cmdline) and
/// not PGPASSWORD either, which shows in /proc/<pid>/environ to the same user and is deprecated by libpq.
pub struct Passfile {
    file: tempfile::NamedTempFile,
}

impl Passfile {
    /// A passfile whose single entry matches any host, port, database and user.
    pub fn new(password: &str) -> std::io::Result<Self> {
        Self::for_entry("*", "*", "*", "*", password)
    }

    /// A passfile with one `host:port:database:user:password` entry; fields are escaped as libpq expects.
    pub fn for_entry(host: &str, port: &str, database: &str, user: &str, password: &str) -> std::io::Result<Self> {
        let line = passfile_line(host, port, database, user, password)?;
        // tempfile creates the file with mode 0600.
        let mut file = tempfile::Builder::new().prefix("qrd-pgpass-").tempfile()?;
        file.write_all(line.as_bytes())?;
        file.flush()?;
        Ok(Self { file })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Points `cmd` at this passfile.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("PGPASSFILE", self.path());
    }
}

/// One line of a libpq password file, `host:port:database:user:password\n`, each field escaped
/// ([`passfile_field`]) except a `*`, which matches anything. For the temporary [`Passfile`] and for
/// passfiles that live on (a standby's). libpq reads the file line by line, so a password with a line break
/// cannot be written.
pub fn passfile_line(host: &str, port: &str, database: &str, user: &str, password: &str) -> std::io::Result<String> {
    if password.contains(['\n', '\r']) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a password containing a line break cannot be passed through a libpq password file",
        ));
    }
    let field = |s: &str| if s == "*" { s.to_owned() } else { passfile_field(s) };
    Ok(format!("{}:{}:{}:{}:{}\n", field(host), field(port), field(database), field(user), passfile_field(password)))
}

/// One field of a libpq password file line, `\` and `:` escaped (for passfiles written elsewhere too, such
/// as a standby's, which lives as long as the standby).
pub fn passfile_field(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// A value of a libpq conninfo string (`dbname=…`, `primary_conninfo`), single-quoted as libpq reads it, so
/// any text is one value.
pub fn conninfo_value(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn passfile_is_private_and_escaped() {
        let p = Passfile::for_entry("/tmp/s", "4432", "QSR", "a:b", r"p\w:d").unwrap();
        let mode = std::fs::metadata(p.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(p.path()).unwrap(), "/tmp/s:4432:QSR:a\\:b:p\\\\w\\:d\n");
        let path = p.path().to_owned();
        drop(p);
        assert!(!path.exists());
        let err = Passfile::new("a\nb").err().expect("a password with a line break cannot be written");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("line break"), "{err}");
    }

    #[test]
    fn scrubbed_command_drops_pg_variables() {
        // SAFETY: tests in this module do not read the environment concurrently.
        unsafe { std::env::set_var("PGPASSWORD", "leak") };
        unsafe { std::env::set_var("QRD_REPLICATION_PASSWORD", "leak-too") };
        unsafe { std::env::set_var("QRD_PG_BIN_DIR", "/kept") };
        let out = scrubbed_command("env").output().unwrap();
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(!env.contains("PGPASSWORD") && !env.contains("leak-too"), "{env}");
        assert!(env.contains("QRD_PG_BIN_DIR=/kept"), "only password variables go: {env}");
    }
}
