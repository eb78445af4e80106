//! What can go wrong, each with the next step.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HaError {
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
    #[error("{what} did not happen within {seconds} s: {last}")]
    Timeout { what: String, seconds: u64, last: String },
    #[error(transparent)]
    Query(#[from] qrd_pg::inventory::QueryError),
    #[error(transparent)]
    Cert(#[from] qrd_cert::CertError),
    /// A step done by another part of qrd (backup, restore), with its own message and next step.
    #[error("could not {what}: {message}")]
    Step { what: &'static str, message: String, next: String, refusal: bool },
}

impl HaError {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        HaError::Io { action, path: path.to_owned(), source }
    }

    pub fn step(what: &'static str, message: String, next: String, refusal: bool) -> Self {
        HaError::Step { what, message, next, refusal }
    }

    /// Refused before anything changed (exit code 4), rather than failed while working.
    pub fn is_refusal(&self) -> bool {
        matches!(self, HaError::Spec { .. } | HaError::Refused(_) | HaError::Step { refusal: true, .. })
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            HaError::Spec { .. } => Some("see qrd ha init --help".into()),
            HaError::NoConfig { .. } => Some(
                "pass --config with a member's patroni.yml (qrd ha init writes one per member), or name a \
                 member's REST API with --api http://HOST:8008"
                    .into(),
            ),
            HaError::NoApi { .. } => Some(
                "start Patroni on the members (systemctl start patroni@<major>-<cluster>), or name a member's \
                 REST API with --api http://HOST:8008"
                    .into(),
            ),
            HaError::Api { .. } => Some(
                "the REST API password is PATRONI_RESTAPI_PASSWORD in a member's env file: pass --env-file \
                 with that file, or set QRD_PATRONI_API_PASSWORD"
                    .into(),
            ),
            HaError::Timeout { .. } => Some("qrd ha status shows where the cluster stands".into()),
            HaError::Step { next, .. } => Some(next.clone()),
            _ => None,
        }
    }
}
