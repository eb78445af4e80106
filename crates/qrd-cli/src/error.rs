//! The user-facing error. Every library error says its own exit code and next step where it is defined
//! ([`qrd_exit::UserError`]; wrapping errors delegate to what they wrap), so this file has no table: one
//! conversion serves them all.

pub use qrd_exit::ExitStatus;
use qrd_exit::UserError;

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

impl<E: UserError> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError { status: e.exit_status(), message: e.to_string(), hint: e.hint().filter(|h| !h.trim().is_empty()) }
    }
}

#[cfg(test)]
mod tests {
    //! The exit-code table, read through the one conversion the commands use: each error's own code, and
    //! wrapping errors keeping the code of what they wrap (the defects this table guards against: a
    //! connection failure inside a standby command exited 5, not 3; `qrd ha adopt --bundle missing` exited
    //! 5 where `qrd restore missing` exits 2; an empty password exited 2 where the table says 4).

    use std::path::PathBuf;

    use qrd_backup::backup::BackupError;
    use qrd_backup::bundle::ReadError;
    use qrd_backup::restore::RestoreError;
    use qrd_backup::verify::VerifyError;
    use qrd_pg::connect::{ConnectError, ConnectErrorKind, Target};
    use qrd_pg::inventory::QueryError;
    use qrd_pg::password::PasswordError;
    use qrd_pgbin::{FindError, PgVersion, Tool, ToolError};
    use qrd_replica::ReplicaError;

    use super::*;

    fn connect(kind: ConnectErrorKind) -> ConnectError {
        let target = Target { host: "db1".into(), port: 4432, user: "postgres".into(), dbname: "postgres".into() };
        ConnectError { target, dbname: "postgres".into(), kind, reason: "FATAL: no".into() }
    }

    fn missing_bundle() -> ReadError {
        let source = std::io::Error::from(std::io::ErrorKind::NotFound);
        ReadError::Io { what: "open", path: PathBuf::from("/b/missing.tar.zst"), source }
    }

    fn no_tool() -> FindError {
        let server = PgVersion { major: 16, minor: 4, text: "16.4".into() };
        FindError { tool: Tool::PgRestore, server, searched: vec![], rejected: vec![] }
    }

    fn tool_failed() -> ToolError {
        ToolError::Spawn {
            action: "dump".into(),
            command: "pg_dump".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
    }

    fn query() -> QueryError {
        QueryError::Query { sql: "q.sql", database: "QSR".into(), message: "ERROR: no".into() }
    }

    fn code(e: impl Into<CliError>) -> u8 {
        let e: CliError = e.into();
        assert!(e.hint.as_deref().is_none_or(|h| !h.trim().is_empty()), "an empty hint for {}", e.message);
        e.status as u8
    }

    #[test]
    fn every_error_keeps_its_code_through_the_errors_that_wrap_it() {
        let empty = || PasswordError::Empty { origin: "file /pw".into() };
        let unreadable = || PasswordError::Read { path: "/pw".into(), source: std::io::Error::other("denied") };
        let table: Vec<(&str, u8, u8)> = vec![
            // connections
            ("refused connection", code(connect(ConnectErrorKind::Refused)), 3),
            ("bad connection option", code(connect(ConnectErrorKind::Config)), 2),
            ("query", code(query()), 5),
            ("connection inside a query", code(QueryError::Connect(connect(ConnectErrorKind::Auth))), 3),
            // passwords
            ("empty password", code(empty()), 4),
            ("unreadable password file", code(unreadable()), 2),
            (
                "empty password in auth",
                code(qrd_auth::AuthError::Password { source: empty(), alternatives: String::new() }),
                4,
            ),
            // tools
            ("no fitting tool", code(no_tool()), 4),
            ("tool failed", code(tool_failed()), 5),
            // backups
            ("backup: connection", code(BackupError::Connect(connect(ConnectErrorKind::Timeout))), 3),
            (
                "backup: query's connection",
                code(BackupError::Query(QueryError::Connect(connect(ConnectErrorKind::Refused)))),
                3,
            ),
            ("backup: no tool", code(BackupError::Tools(no_tool())), 4),
            ("backup: tool", code(BackupError::Tool(tool_failed())), 5),
            ("backup: no database", code(BackupError::NoDatabase { name: "QSR".into(), qlik: true }), 4),
            ("verify: missing bundle", code(VerifyError::Read(missing_bundle())), 2),
            ("verify: no tool", code(VerifyError::Tools(no_tool())), 4),
            ("restore: missing bundle", code(RestoreError::Read(missing_bundle())), 2),
            ("restore: connection", code(RestoreError::Connect(connect(ConnectErrorKind::Auth))), 3),
            ("restore: not empty", code(RestoreError::NotEmpty { name: "QSR".into(), tables: 3 }), 4),
            ("restore: row counts", code(RestoreError::RowCounts { mismatches: vec![] }), 5),
            // standbys
            ("replica: connection", code(ReplicaError::Connect(connect(ConnectErrorKind::Refused))), 3),
            (
                "replica: query's connection",
                code(ReplicaError::Query(QueryError::Connect(connect(ConnectErrorKind::Refused)))),
                3,
            ),
            ("replica: refusal", code(ReplicaError::NoStandby), 4),
            ("replica: no tool", code(ReplicaError::Tools(no_tool())), 4),
            ("replica: tool", code(ReplicaError::Tool(tool_failed())), 5),
            // HA: the wrapped errors decide
            ("ha adopt: missing bundle", code(qrd_ha::HaError::Restore(RestoreError::Read(missing_bundle()))), 2),
            (
                "ha: empty password",
                code(qrd_ha::HaError::Auth(qrd_auth::AuthError::Password {
                    source: empty(),
                    alternatives: String::new(),
                })),
                4,
            ),
            ("ha: no REST API", code(qrd_ha::HaError::NoApi { tried: "https://pg1:8008".into() }), 3),
            ("ha: usage", code(qrd_ha::HaError::Usage("no endpoint".into())), 2),
            ("ha: refused", code(qrd_ha::HaError::Refused("no".into())), 4),
            // configuration
            (
                "settings: query's connection",
                code(qrd_server::settings::SettingsError::Query(QueryError::Connect(connect(
                    ConnectErrorKind::Refused,
                )))),
                3,
            ),
            ("settings: invalid", code(qrd_server::settings::SettingsError::Invalid { problems: vec![] }), 4),
            ("local: connection", code(qrd_server::LocalError::Connect(connect(ConnectErrorKind::Refused))), 3),
            (
                "tls: unreadable input",
                code(qrd_tls::TlsError::ReadInput {
                    what: "certificate",
                    path: "/c".into(),
                    source: std::io::Error::other("x"),
                }),
                2,
            ),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(_, got, want)| got != want)
            .map(|(what, got, want)| format!("{what}: exit {got}, the table says {want}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
