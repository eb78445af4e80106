//! The exit codes every `qrd` command ends with (README, "Exit codes"), and [`UserError`]: the trait by
//! which each library error says, where it is defined, which code it means and what to do next. An error
//! that wraps another delegates both to it, so a connection failure deep inside a standby clone still exits
//! 3 and still says how to get in; the CLI's table has no special cases.
//!
//! Interruptions (Ctrl-C, SIGTERM) are not here: their codes, 128 + the signal, come from the signal.

/// Exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitStatus {
    Success = 0,
    /// `qrd check` found at least one `fail`.
    ChecksFailed = 1,
    /// Bad command line (clap), or an option whose file cannot be used (password file, root certificate).
    Usage = 2,
    /// Could not connect or authenticate.
    Connect = 3,
    /// Refused before changing anything: the server's state or the input does not allow the action.
    Refused = 4,
    /// Failed while working (a statement failed part-way, a query failed, an I/O error, a tool failed).
    Failed = 5,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error a command may end with: what it means for the exit code, and the next step for the person
/// at the console (or `None` when the message says it all).
pub trait UserError: std::error::Error {
    fn exit_status(&self) -> ExitStatus;
    fn hint(&self) -> Option<String>;
}

impl<E: UserError> UserError for Box<E> {
    fn exit_status(&self) -> ExitStatus {
        (**self).exit_status()
    }

    fn hint(&self) -> Option<String> {
        (**self).hint()
    }
}
