//! The user-facing error and the documented exit codes.

use qrd_pg::connect::{ConnectError, ConnectErrorKind};
use qrd_pg::inventory::QueryError;

/// Exit codes (README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Failed while working (a statement failed part-way, a query failed, an I/O error).
    Failed = 5,
}

/// An error as shown to the user: what failed, then the next step.
#[derive(Debug)]
pub struct CliError {
    pub status: ExitStatus,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<ConnectError> for CliError {
    fn from(e: ConnectError) -> Self {
        let hint = e.hint();
        CliError::new(connect_status(&e), e.to_string()).hint(hint)
    }
}

impl From<QueryError> for CliError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Connect(c) => c.into(),
            other => CliError::new(ExitStatus::Failed, other.to_string())
                .hint("run again with -v for the statements qrd runs; the server log may say more"),
        }
    }
}

// ---- the error table: each library error, its exit code and its hint, in one place ----

fn connect_status(e: &ConnectError) -> ExitStatus {
    // A local input problem is not a connection failure: scripts can tell the two apart.
    if e.kind == ConnectErrorKind::Config { ExitStatus::Usage } else { ExitStatus::Connect }
}

impl From<qrd_server::LocateError> for CliError {
    fn from(e: qrd_server::LocateError) -> Self {
        use qrd_server::LocateError as E;
        let status = match &e {
            E::Connect(c) => connect_status(c),
            E::Query(_) => ExitStatus::Failed,
            E::NoFile { .. } | E::Read { .. } => ExitStatus::Usage,
        };
        let hint = e.hint();
        CliError::new(status, e.to_string()).hint(hint)
    }
}

impl From<qrd_server::LocalError> for CliError {
    fn from(e: qrd_server::LocalError) -> Self {
        use qrd_server::LocalError as E;
        let status = match &e {
            E::Connect(c) => connect_status(c),
            E::Query(_) => ExitStatus::Failed,
            E::DataDirUnreachable { .. }
            | E::OtherDataDir { .. }
            | E::Read { .. }
            | E::Conf(_)
            | E::Hba(_)
            | E::Setting { .. } => ExitStatus::Refused,
        };
        let hint = e.hint();
        CliError::new(status, e.to_string()).hint(hint)
    }
}

impl From<qrd_server::WriteError> for CliError {
    fn from(e: qrd_server::WriteError) -> Self {
        // Every checked-write failure happens while working: the files are back as they were (or the
        // message says which are not).
        let hint = e.hint();
        CliError::new(ExitStatus::Failed, e.to_string()).hint(hint)
    }
}

impl From<qrd_tls::TlsError> for CliError {
    fn from(e: qrd_tls::TlsError) -> Self {
        use qrd_tls::TlsError as E;
        match e {
            // Errors of the shared homes keep their own entries.
            E::Local(e) => e.into(),
            E::Write(e) => e.into(),
            e => {
                let status = match &e {
                    E::ReadInput { .. } => ExitStatus::Usage,
                    e if e.is_refusal() => ExitStatus::Refused,
                    _ => ExitStatus::Failed,
                };
                let hint = e.hint();
                CliError::new(status, e.to_string()).hint(hint)
            }
        }
    }
}

impl From<qrd_server::hba::HbaError> for CliError {
    fn from(e: qrd_server::hba::HbaError) -> Self {
        use qrd_server::hba::HbaError as E;
        match e {
            E::Locate(e) => e.into(),
            E::Query(e) => e.into(),
            e => {
                let hint = e.hint();
                CliError::new(ExitStatus::Refused, e.to_string()).hint(hint)
            }
        }
    }
}

impl From<qrd_server::settings::SettingsError> for CliError {
    fn from(e: qrd_server::settings::SettingsError) -> Self {
        use qrd_server::settings::SettingsError as E;
        match e {
            E::Query(e) => e.into(),
            e => {
                let status = if e.is_refusal() { ExitStatus::Refused } else { ExitStatus::Failed };
                let hint = e.hint();
                CliError::new(status, e.to_string()).hint(hint)
            }
        }
    }
}

/// A password that cannot be had: an unreadable `--…-password-file` is a usage error (exit 2, as for
/// `--password-file`); a password refused for what it is (empty, not UTF-8), or no terminal to ask on, or
/// two typings that differ, is a refusal before anything changed (exit 4). The same in every command.
fn password_status(e: &qrd_pg::password::PasswordError) -> ExitStatus {
    match e {
        qrd_pg::password::PasswordError::Read { .. } => ExitStatus::Usage,
        _ => ExitStatus::Refused,
    }
}

impl From<qrd_auth::AuthError> for CliError {
    fn from(e: qrd_auth::AuthError) -> Self {
        use qrd_auth::AuthError as E;
        match e {
            // Errors of the shared homes keep their own entries.
            E::Connect(e) => e.into(),
            E::Query(e) => e.into(),
            E::Write(e) => e.into(),
            e => {
                let status = match &e {
                    E::Password { source, .. } => password_status(source),
                    e if e.is_refusal() => ExitStatus::Refused,
                    _ => ExitStatus::Failed,
                };
                let hint = e.hint();
                CliError::new(status, e.to_string()).hint(hint)
            }
        }
    }
}

impl From<qrd_pg::provision::Refused> for CliError {
    fn from(e: qrd_pg::provision::Refused) -> Self {
        let hint = e.hint();
        CliError::new(ExitStatus::Refused, e.to_string()).hint(hint)
    }
}

impl From<qrd_pg::provision::ApplyError> for CliError {
    fn from(e: qrd_pg::provision::ApplyError) -> Self {
        use qrd_pg::provision::ApplyError as E;
        match e {
            E::Connect(c) => c.into(),
            e => {
                let status = if matches!(e, E::Locked) { ExitStatus::Refused } else { ExitStatus::Failed };
                let hint = e.hint();
                let err = CliError::new(status, e.to_string());
                match hint {
                    Some(h) => err.hint(h),
                    None => err,
                }
            }
        }
    }
}

/// A library error that says its next step; `status` is its exit code.
fn with_hint(status: ExitStatus, message: String, hint: String) -> CliError {
    CliError::new(status, message).hint(hint)
}

impl From<qrd_backup::backup::BackupError> for CliError {
    fn from(e: qrd_backup::backup::BackupError) -> Self {
        use qrd_backup::backup::BackupError as E;
        match e {
            E::Connect(c) => c.into(),
            e => {
                let status = if e.is_refusal() { ExitStatus::Refused } else { ExitStatus::Failed };
                with_hint(status, e.to_string(), e.hint())
            }
        }
    }
}

impl From<qrd_backup::verify::VerifyError> for CliError {
    fn from(e: qrd_backup::verify::VerifyError) -> Self {
        use qrd_backup::verify::VerifyError as E;
        // A bundle that is missing or not one is the input's problem; a damaged one fails verification.
        let status = match &e {
            E::Read(qrd_backup::bundle::ReadError::Io { .. }) => ExitStatus::Usage,
            E::Tools(_) => ExitStatus::Refused,
            _ => ExitStatus::Failed,
        };
        with_hint(status, e.to_string(), e.hint())
    }
}

impl From<qrd_backup::retention::PruneError> for CliError {
    fn from(e: qrd_backup::retention::PruneError) -> Self {
        // A bundle that could not be checked was kept: the prune did not do all its work.
        with_hint(ExitStatus::Failed, e.to_string(), e.hint())
    }
}

impl From<qrd_backup::retention::ListError> for CliError {
    fn from(e: qrd_backup::retention::ListError) -> Self {
        with_hint(ExitStatus::Usage, e.to_string(), e.hint())
    }
}

impl From<qrd_backup::lock::LockError> for CliError {
    fn from(e: qrd_backup::lock::LockError) -> Self {
        with_hint(ExitStatus::Refused, e.to_string(), e.hint())
    }
}

impl From<qrd_backup::restore::RestoreError> for CliError {
    fn from(e: qrd_backup::restore::RestoreError) -> Self {
        use qrd_backup::restore::RestoreError as E;
        match e {
            E::Connect(c) => c.into(),
            E::Read(qrd_backup::bundle::ReadError::Io { .. }) => with_hint(ExitStatus::Usage, e.to_string(), e.hint()),
            e => {
                let status = if e.is_refusal() { ExitStatus::Refused } else { ExitStatus::Failed };
                with_hint(status, e.to_string(), e.hint())
            }
        }
    }
}

impl From<qrd_backup::offline::OfflineError> for CliError {
    fn from(e: qrd_backup::offline::OfflineError) -> Self {
        let status = if e.is_refusal() { ExitStatus::Refused } else { ExitStatus::Failed };
        with_hint(status, e.to_string(), e.hint())
    }
}

impl From<qrd_ha::HaError> for CliError {
    fn from(e: qrd_ha::HaError) -> Self {
        use qrd_ha::HaError as E;
        let status = match e {
            // Errors of the other parts of qrd keep their own entries (a missing bundle exits as for
            // `qrd restore`, an empty password as for any command).
            E::Query(q) => return q.into(),
            E::Auth(a) => return a.into(),
            E::Backup(b) => return b.into(),
            E::Restore(r) => return r.into(),
            // An option's file that cannot be used, or a command line that is not enough.
            E::NoConfig { .. } | E::Usage(_) => ExitStatus::Usage,
            ref e if e.is_refusal() => ExitStatus::Refused,
            E::NoApi { .. } | E::Api { .. } => ExitStatus::Connect,
            _ => ExitStatus::Failed,
        };
        let err = CliError::new(status, e.to_string());
        match e.hint() {
            Some(h) => err.hint(h),
            None => err,
        }
    }
}

impl From<qrd_replica::ReplicaError> for CliError {
    fn from(e: qrd_replica::ReplicaError) -> Self {
        let status = if e.is_refusal() { ExitStatus::Refused } else { ExitStatus::Failed };
        with_hint(status, e.to_string(), e.hint())
    }
}
