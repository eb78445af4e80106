//! What can go wrong, each with the next step. Errors of the other parts of qrd that `qrd ha` runs
//! (passwords, backup, restore) keep their own type, so the CLI maps them exactly as for their own
//! commands (`qrd ha adopt --bundle missing.tar.zst` exits as `qrd restore missing.tar.zst` does).

use std::path::{Path, PathBuf};

use qrd_exit::{ExitStatus, UserError};
use qrd_pgbin::{TimedOut, WaitError};

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// The command line is incomplete or contradicts itself (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error("{reason}")]
    Spec { reason: String },
    #[error("could not {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Write(#[from] qrd_conf::write::WriteError),
    #[error("{url}: {message}")]
    Api { url: String, message: String },
    #[error("cannot read the member configuration {}: {reason}", path.display())]
    NoConfig { path: PathBuf, reason: String },
    #[error("no member's REST API answered ({tried})")]
    NoApi { tried: String },
    #[error("{0}")]
    Refused(String),
    /// A wait that gave up: what it waited for, how long, and what it saw last.
    #[error(transparent)]
    Timeout(TimedOut),
    /// qrd was interrupted (Ctrl-C, SIGTERM) while it waited.
    #[error("stopped waiting until {what}: qrd received {signal}")]
    Interrupted { what: String, signal: String },
    #[error(transparent)]
    Query(#[from] qrd_pg::inventory::QueryError),
    #[error(transparent)]
    Cert(#[from] qrd_cert::CertError),
    /// A password that could not be had (its file, variable or prompt), as `qrd_auth` reports it.
    #[error(transparent)]
    Auth(#[from] qrd_auth::AuthError),
    /// Backing up the standalone server `qrd ha adopt` moves in.
    #[error(transparent)]
    Backup(#[from] qrd_backup::backup::BackupError),
    /// Restoring the bundle into the leader.
    #[error(transparent)]
    Restore(#[from] qrd_backup::restore::RestoreError),
}

impl HaError {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        HaError::Io { action, path: path.to_owned(), source }
    }
}

impl UserError for HaError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // Errors of the other parts of qrd keep their own codes (a missing bundle exits as for
            // `qrd restore`, an empty password as for any command).
            HaError::Query(e) => e.exit_status(),
            HaError::Auth(e) => e.exit_status(),
            HaError::Backup(e) => e.exit_status(),
            HaError::Restore(e) => e.exit_status(),
            // An option's file that cannot be used, or a command line that is not enough.
            HaError::NoConfig { .. } | HaError::Usage(_) => ExitStatus::Usage,
            // Refused before anything changed.
            HaError::Spec { .. } | HaError::Refused(_) => ExitStatus::Refused,
            // Patroni's REST API could not be reached or refused us.
            HaError::NoApi { .. } | HaError::Api { .. } => ExitStatus::Connect,
            HaError::Io { .. }
            | HaError::Write(_)
            | HaError::Timeout(_)
            | HaError::Interrupted { .. }
            | HaError::Cert(_) => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            HaError::Spec { .. } => Some("see qrd ha init --help".into()),
            HaError::NoConfig { .. } => Some(
                "pass --config with a member's patroni.yml (qrd ha init writes one per member), or name a \
                 member's REST API with --api https://HOST:8008 (and --api-ca with the CA that signed its certificate)"
                    .into(),
            ),
            HaError::NoApi { .. } => Some(
                "start Patroni on the members (systemctl start patroni@<major>-<cluster>), or name a member's \
                 REST API with --api https://HOST:8008"
                    .into(),
            ),
            HaError::Api { .. } => Some(
                "the REST API password is PATRONI_RESTAPI_PASSWORD in a member's env file: pass --env-file \
                 with that file, or set QRD_PATRONI_API_PASSWORD; a certificate error means --api-ca (or the \
                 restapi.cafile of --config) is not the CA that signed the members' certificate"
                    .into(),
            ),
            HaError::Timeout(_) | HaError::Interrupted { .. } => {
                Some("qrd ha status shows where the cluster stands".into())
            }
            HaError::Query(e) => e.hint(),
            HaError::Auth(e) => e.hint(),
            HaError::Backup(e) => e.hint(),
            HaError::Restore(e) => e.hint(),
            _ => None,
        }
    }
}

impl From<WaitError<HaError>> for HaError {
    fn from(e: WaitError<HaError>) -> Self {
        match e {
            WaitError::TimedOut(t) => HaError::Timeout(t),
            WaitError::Failed(e) => e,
            WaitError::Interrupted { what, signal } => HaError::Interrupted { what, signal },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn waits_end_in_ha_errors() {
        let waited = TimedOut {
            what: "node2 leads and answers /primary".into(),
            waited: Duration::from_millis(30_000),
            last: "node2's /primary answers HTTP 503".into(),
        };
        let e = HaError::from(WaitError::TimedOut(waited));
        assert_eq!(
            e.to_string(),
            "gave up after 30.0 s waiting until node2 leads and answers /primary (last seen: node2's /primary answers HTTP 503)"
        );
        assert_eq!(e.hint().as_deref(), Some("qrd ha status shows where the cluster stands"));
        let e = HaError::from(WaitError::Interrupted { what: "node1 runs again".into(), signal: "SIGTERM".into() });
        assert_eq!(e.to_string(), "stopped waiting until node1 runs again: qrd received SIGTERM");
        let e = HaError::from(WaitError::Failed(HaError::NoApi { tried: "x".into() }));
        assert!(matches!(e, HaError::NoApi { .. }), "{e:?}");
    }
}
