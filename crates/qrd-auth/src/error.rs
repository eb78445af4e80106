//! Why a password or SCRAM flow stopped, with the context a DBA needs and the next step.

use qrd_conf::hba::EditError;
use qrd_conf::pgconf::LoadError;
use qrd_exit::{ExitStatus, UserError};
use qrd_pg::connect::ConnectError;
use qrd_pg::inventory::QueryError;
use qrd_pg::password::PasswordError;
use qrd_pg::password::verifier::HashType;
use qrd_pgbin::shell_quote;
use qrd_server::WriteError;

use crate::scram::Blocked;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Writing pg_hba.conf (and its included files) failed; the files are back as they were.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A password could not be had from its file, environment variable or prompt.
    #[error("{source}")]
    Password {
        source: PasswordError,
        /// Where else it may come from, for the hint: `--new-password-file FILE (mode 0600) or set …`.
        alternatives: String,
    },
    #[error("role {role:?} does not exist")]
    NoSuchRole {
        role: String,
        /// The repository role's name when `role` is it (`qrd provision` creates it).
        repo_role: Option<String>,
    },
    /// `qrd scram status` needs `pg_authid`.
    #[error("{user} cannot read pg_authid")]
    CannotReadAuthid { user: String },
    #[error(
        "{user} cannot read every login role's password type, so qrd cannot tell who an md5 → scram-sha-256 \
         switch would lock out; nothing was changed"
    )]
    LoginRolesUnknown { user: String },
    #[error(
        "the password given for role {role:?} is not its current one (it does not match the stored {} hash)",
        hash.as_str()
    )]
    NotCurrentPassword { role: String, hash: HashType },
    /// A role that needs a password (a new one) and none was given, with no terminal to ask on.
    #[error("the repository role {role:?} needs a password and none was given")]
    NeedsPassword { role: String, alternatives: String },
    /// The lock-out refusal: md5 rules that roles keeping an md5 hash log in through.
    #[error(
        "these pg_hba.conf lines would become scram-sha-256 while roles that still have md5 hashes log in \
         through them (they would be locked out):{}",
        blocked.iter().map(|b| format!("\n  {b}")).collect::<String>()
    )]
    LockOut {
        blocked: Vec<Blocked>,
        /// Every role the migration should name to go through: the ones asked for and the blocking ones.
        with_roles: Vec<String>,
    },
    #[error("the migration needs a connection to the server (it changes roles and reloads)")]
    NoServer,
    /// pg_hba.conf or a file it includes cannot be read or parsed.
    #[error("{0}")]
    Hba(#[from] LoadError),
    #[error("{0}")]
    HbaEdit(#[from] EditError),
    #[error("after ALTER ROLE, the stored password of {role:?} is not a {} verifier of the new password", expect.as_str())]
    StoredMismatch { role: String, expect: HashType },
    /// The server refused the password in a verification login.
    #[error("the stored password is right, but logging in as {role:?} failed: {reason}")]
    LoginFailed { role: String, reason: String },
    /// `ALTER SYSTEM SET password_encryption` failed (`message`: the server's).
    #[error("ALTER SYSTEM failed: {message}")]
    AlterSystem { message: String },
    #[error("after ALTER SYSTEM and a reload, password_encryption is still {value:?}")]
    EncryptionNotApplied { value: String },
}

impl UserError for AuthError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            AuthError::Connect(e) => e.exit_status(),
            AuthError::Query(e) => e.exit_status(),
            AuthError::Write(e) => e.exit_status(),
            // A password that cannot be had: as its kind says (an unreadable file is a usage error).
            AuthError::Password { source, .. } => source.exit_status(),
            // Refused before anything changed: the server's state or the input does not allow it.
            AuthError::NoSuchRole { .. }
            | AuthError::CannotReadAuthid { .. }
            | AuthError::LoginRolesUnknown { .. }
            | AuthError::NotCurrentPassword { .. }
            | AuthError::LockOut { .. }
            | AuthError::NoServer
            | AuthError::Hba(_)
            | AuthError::HbaEdit(_)
            | AuthError::NeedsPassword { .. } => ExitStatus::Refused,
            // Failed while working.
            AuthError::StoredMismatch { .. }
            | AuthError::LoginFailed { .. }
            | AuthError::AlterSystem { .. }
            | AuthError::EncryptionNotApplied { .. } => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl AuthError {
    pub(crate) fn password(source: PasswordError, alternatives: impl Into<String>) -> Self {
        AuthError::Password { source, alternatives: alternatives.into() }
    }

    fn hint_text(&self) -> String {
        match self {
            AuthError::Connect(e) => e.hint().unwrap_or_default(),
            AuthError::Query(QueryError::Connect(e)) => e.hint().unwrap_or_default(),
            AuthError::Query(_) => "run again with -v for the statements qrd runs; the server log may say more".into(),
            AuthError::Write(e) => e.hint().unwrap_or_default(),
            AuthError::NeedsPassword { alternatives, .. } => format!("pass {alternatives}"),
            AuthError::Password { source, alternatives } => match source {
                PasswordError::Read { .. } => {
                    format!("check the path and that this user may read the file; or give {alternatives}")
                }
                PasswordError::Empty { .. } | PasswordError::NotUtf8 { .. } => {
                    format!("give a non-empty UTF-8 password: {alternatives}")
                }
                PasswordError::NoTerminal { .. } | PasswordError::Mismatch | PasswordError::Prompt(_) => {
                    format!("give {alternatives}")
                }
            },
            AuthError::NoSuchRole { repo_role: Some(repo), .. } => {
                if repo == qrd_pg::spec::DEFAULT_REPO_ROLE {
                    "create it with `qrd provision`".into()
                } else {
                    format!("create it with `qrd provision --repo-user {}`", shell_quote(repo))
                }
            }
            AuthError::NoSuchRole { repo_role: None, .. } => "check the name (role names are case-sensitive)".into(),
            AuthError::CannotReadAuthid { .. } => "connect as a superuser (-U postgres)".into(),
            AuthError::LoginRolesUnknown { .. } => "run the migration as a superuser (-U postgres)".into(),
            AuthError::NotCurrentPassword { .. } => {
                "give the current password (the migration keeps it, so Qlik's connection strings stay valid), or \
                 pass --change-password to set a new one and then update every node"
                    .into()
            }
            AuthError::LockOut { with_roles, .. } => {
                let add: String = with_roles.iter().map(|r| format!(" --role {}", shell_quote(r))).collect();
                format!(
                    "migrate those roles too (`qrd scram migrate{add}` with their passwords), or pass --partial-hba \
                     to leave those lines md5 for now; nothing was changed"
                )
            }
            AuthError::NoServer => "start the server, or drop --offline".into(),
            AuthError::Hba(LoadError::Parse(_)) => {
                "fix pg_hba.conf at the place named above; nothing was changed".into()
            }
            AuthError::Hba(_) => "fix the file or include line named above; nothing was changed".into(),
            AuthError::HbaEdit(_) => "switch that line to scram-sha-256 by hand (or with `qrd hba`) and run the \
                                      migration again; nothing in pg_hba.conf was changed"
                .into(),
            AuthError::StoredMismatch { .. } => {
                "something else changed the role at the same time, or a hook rewrote the password; run the command \
                 again"
                    .into()
            }
            AuthError::LoginFailed { .. } => {
                "check the pg_hba.conf line this connection uses (`qrd hba explain`): md5 or scram-sha-256".into()
            }
            AuthError::AlterSystem { .. } => {
                "nothing was changed yet; run again with -v for the statements qrd runs, the server log may say more"
                    .into()
            }
            AuthError::EncryptionNotApplied { .. } => "look for a per-database or per-role setting of \
                                                       password_encryption, or a reload error in the server log"
                .into(),
        }
    }
}
