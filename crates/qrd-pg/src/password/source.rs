//! Where passwords come from: a file, an environment variable, or a prompt on a terminal. Never argv.

use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use qrd_exit::{ExitStatus, UserError};

use crate::password::Secret;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("failed to read the password file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the password from {origin} is empty; empty passwords are refused (PostgreSQL handles them badly, the guide says so too)"
    )]
    Empty { origin: String },
    #[error("the password from {origin} is not valid UTF-8")]
    NotUtf8 { origin: String },
    #[error("{what} is needed, but there is no terminal to ask on")]
    NoTerminal { what: String },
    #[error("the two passwords typed do not match")]
    Mismatch,
    #[error("failed to read a password from the terminal: {0}")]
    Prompt(std::io::Error),
}

/// A password that cannot be had: an unreadable password file is a usage error (exit 2, as for
/// `--password-file`); a password refused for what it is (empty, not UTF-8), or no terminal to ask on, or
/// two typings that differ, is a refusal before anything changed (exit 4). The same in every command.
impl UserError for PasswordError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            PasswordError::Read { .. } => ExitStatus::Usage,
            _ => ExitStatus::Refused,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                PasswordError::Read { .. } => "check the file's path and that this user may read it",
                PasswordError::Empty { .. } => "give a non-empty password",
                PasswordError::NotUtf8 { .. } => "save the password as UTF-8 text",
                PasswordError::NoTerminal { .. } => {
                    "give it in a file (the command's --…-password-file option) or its QRD_…PASSWORD variable"
                }
                PasswordError::Mismatch => "type the same password twice",
                PasswordError::Prompt(_) => "give it in a file or its variable instead of typing it",
            }
            .to_owned(),
        )
    }
}

/// Reads a password file: its whole content minus one trailing line break (`\n` or `\r\n`). A file others
/// can read earns a warning, not a refusal: it may be a mounted secret whose mode the user cannot change.
pub fn from_file(path: &Path) -> Result<Secret, PasswordError> {
    let origin = format!("file {}", path.display());
    let bytes = std::fs::read(path).map_err(|source| PasswordError::Read { path: path.to_owned(), source })?;
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
        tracing::warn!("password file {} is readable by group or others; chmod 600 it", path.display());
    }
    let text = String::from_utf8(bytes).map_err(|_| PasswordError::NotUtf8 { origin: origin.clone() })?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    non_empty(Secret::new(text), origin)
}

/// Reads a password from an environment variable, if set. Set-but-empty is an error, not "unset".
pub fn from_env(var: &str) -> Result<Option<Secret>, PasswordError> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(v) => {
            let origin = format!("environment variable {var}");
            let s = v.into_string().map_err(|_| PasswordError::NotUtf8 { origin: origin.clone() })?;
            non_empty(Secret::new(s), origin).map(Some)
        }
    }
}

/// Whether we may prompt: stdin is a terminal (never in cron or systemd, so a scheduled job fails with a
/// message instead of hanging).
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal()
}

/// Prompts on the terminal without echo. With `confirm`, asks twice.
pub fn prompt(label: &str, confirm: bool) -> Result<Secret, PasswordError> {
    if !can_prompt() {
        return Err(PasswordError::NoTerminal { what: label.to_owned() });
    }
    let first = Secret::new(read_hidden(&format!("{label}: ")).map_err(PasswordError::Prompt)?);
    let first = non_empty(first, "the prompt".to_owned())?;
    if confirm {
        let second = Secret::new(read_hidden(&format!("{label} (again): ")).map_err(PasswordError::Prompt)?);
        if second != first {
            return Err(PasswordError::Mismatch);
        }
    }
    Ok(first)
}

/// Asks on the controlling terminal with echo off. Echo goes off *before* the prompt is written: a
/// reply typed as soon as the prompt shows (a fast typist, a paste, an `expect` script) would otherwise
/// be echoed in the short gap between the two, which is what rpassword's prompt-then-hide did. Echo is
/// put back by a guard, also when reading fails.
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};

    struct Restore<'a>(&'a std::fs::File, nix::sys::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, SetArg::TCSANOW, &self.1);
        }
    }

    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut hidden = saved.clone();
    hidden.local_flags.remove(LocalFlags::ECHO);
    // The Enter key still moves to the next line.
    hidden.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&tty, SetArg::TCSANOW, &hidden)?;
    let _restore = Restore(&tty, saved);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    wait_for_line(&tty)?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}

/// Waits until the terminal has a line to read (it is in canonical mode), watching for Ctrl-C and SIGTERM
/// meanwhile: the CLI takes those over (`qrd_pgbin::interrupt`), so a plain blocking read would go on
/// waiting through them. An interruption ends the prompt as an error, and the guard puts echo back.
fn wait_for_line(tty: &std::fs::File) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    loop {
        if let Some(signal) = qrd_pgbin::interrupt::received() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, format!("qrd received {signal}")));
        }
        let mut fds = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn non_empty(s: Secret, origin: String) -> Result<Secret, PasswordError> {
    if s.is_empty() { Err(PasswordError::Empty { origin }) } else { Ok(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "a b \\'\"\r\n").unwrap();
        assert_eq!(from_file(&p).unwrap().expose(), "a b \\'\"");
        std::fs::write(&p, "x\n\n").unwrap();
        assert_eq!(from_file(&p).unwrap().expose(), "x\n");
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(from_file(&p), Err(PasswordError::Empty { .. })));
        assert!(matches!(from_file(&dir.path().join("missing")), Err(PasswordError::Read { .. })));
    }
}
