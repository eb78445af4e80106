use std::path::PathBuf;

use qrd_cert::{CertError, KeyMismatch};
use qrd_exit::{ExitStatus, UserError};
use qrd_server::{LocalError, SavedError, UndoProblem, WriteError};

/// Why an `ssl` step did not happen or did not finish. Every variant says whether anything changed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // ---- the input, checked before anything changes ----
    #[error("cannot read the {what} {}: {source}", path.display())]
    ReadInput { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{}: {source}; nothing was changed", path.display())]
    BadCertificate { path: PathBuf, source: CertError },
    #[error("{}: {source}; nothing was changed", path.display())]
    BadKey { path: PathBuf, source: CertError },
    #[error("{}: {source}; nothing was changed", path.display())]
    KeyMismatch { path: PathBuf, source: KeyMismatch },
    #[error("{} ({ca_subject}) did not sign {} (issuer {issuer}); nothing was changed", ca.display(), cert.display())]
    CaDidNotSign { ca: PathBuf, ca_subject: String, cert: PathBuf, issuer: String },
    #[error("{}: the certificate ({subject}) expired on {not_after}; nothing was changed", path.display())]
    Expired { path: PathBuf, subject: String, not_after: String },
    #[error("{}: the certificate is not valid before {not_before}; nothing was changed", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    #[error("{0}; nothing was changed")]
    BadHostname(CertError),

    // ---- the server's state does not allow the step ----
    #[error("TLS is temporarily disabled (saved state in {}); nothing was changed", dir.display())]
    TemporarilyDisabled { dir: PathBuf },
    #[error(
        "TLS is already temporarily disabled: {} holds the files to put back; nothing was changed",
        dir.display()
    )]
    AlreadyDisabled { dir: PathBuf },
    #[error("ssl is already off and pg_hba.conf has no hostssl rules: nothing to disable")]
    NothingToDisable,
    #[error("nothing to restore: {} does not exist", dir.display())]
    NothingToRestore { dir: PathBuf },
    #[error(
        "{} changed after `qrd ssl disable --temporary`; restoring would undo those changes (diff above); nothing \
         was changed",
        path.display()
    )]
    EditedSince { path: PathBuf, diff: String },
    #[error(
        "{name} is set with ALTER SYSTEM ({}:{line}, value {value:?}), which overrides postgresql.conf; nothing was \
         changed",
        file.display()
    )]
    ShadowedByAlterSystem { name: String, file: PathBuf, line: usize, value: String },
    #[error("{}:{line}: the connection type is not written plainly as {word}; nothing was changed", path.display())]
    QuotedConnType { path: PathBuf, line: usize, word: &'static str },
    #[error("{} is not UTF-8 text; nothing was changed", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("the server reports no ssl settings")]
    NoSettings,

    // ---- failed while working ----
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Saved(#[from] SavedError),
    #[error(transparent)]
    Query(#[from] qrd_pg::inventory::QueryError),
    #[error("internal: {0}")]
    Internal(String),
    #[error("failed to generate the lab certificate: {0}")]
    Generate(CertError),
    #[error("failed to install {}: {source}{}", path.display(), undo_text(problems))]
    Install { path: PathBuf, source: qrd_conf::write::WriteError, problems: Vec<UndoProblem> },
    #[error(
        "the proof on {host}:{port} failed: {reasons}\n{}",
        put_back(problems, "everything was put back as it was and reloaded")
    )]
    ProofFailed { host: String, port: u16, reasons: String, problems: Vec<UndoProblem> },
    #[error(
        "a plain connection to {host}:{port} still fails: {reason}\n{}",
        put_back(problems, "everything was put back")
    )]
    PlainStillFails { host: String, port: u16, reason: String, problems: Vec<UndoProblem> },
    #[error("the saved files are back, but a TLS connection to {host}:{port} fails: {reason}")]
    RestoredButNoTls { host: String, port: u16, reason: String, dir: PathBuf },
}

fn undo_text(problems: &[UndoProblem]) -> String {
    if problems.is_empty() {
        "\nwhat was installed before it was put back".to_owned()
    } else {
        format!("\nand these could not be put back:{}", problems.iter().map(|p| format!("\n  {p}")).collect::<String>())
    }
}

fn put_back(problems: &[UndoProblem], all_well: &str) -> String {
    if problems.is_empty() {
        all_well.to_owned()
    } else {
        format!("putting things back FAILED for:{}", problems.iter().map(|p| format!("\n  {p}")).collect::<String>())
    }
}

impl UserError for TlsError {
    fn exit_status(&self) -> ExitStatus {
        use TlsError::*;
        match self {
            // Errors of the shared homes keep their own codes.
            Local(e) => e.exit_status(),
            Write(e) => e.exit_status(),
            Query(e) => e.exit_status(),
            // An option's file that cannot be read.
            ReadInput { .. } => ExitStatus::Usage,
            // Refused before anything changed.
            e if is_refusal(e) => ExitStatus::Refused,
            // Failed while working.
            _ => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl TlsError {
    fn hint_text(&self) -> String {
        use TlsError::*;
        match self {
            ReadInput { .. } => "check the path and that this user may read it".into(),
            BadCertificate { .. } => {
                "pass the server certificate in PEM (Qlik: server.pem from Exported Certificates)".into()
            }
            BadKey { source: CertError::EncryptedKey, .. } => {
                "decrypt it first (openssl pkey -in KEY -out server_key.pem) and keep the result 0600".into()
            }
            BadKey { .. } => {
                "pass the certificate's private key in PEM (Qlik: server_key.pem from Exported Certificates)".into()
            }
            KeyMismatch { .. } => "pass the key that belongs to the certificate (both from the same export)".into(),
            CaDidNotSign { .. } => {
                "pass the CA that issued the certificate (Qlik: root.pem from the same export)".into()
            }
            Expired { .. } => "export or request a current certificate".into(),
            NotYetValid { .. } => "check this machine's clock".into(),
            BadHostname(_) => "check the --hostname values".into(),
            TemporarilyDisabled { .. } => "run `qrd ssl restore` first (after the Qlik installer has finished)".into(),
            AlreadyDisabled { .. } => "run `qrd ssl restore` when the Qlik installer has finished (a second disable \
                 would overwrite the saved files)"
                .into(),
            NothingToDisable => "`qrd ssl status` shows the settings".into(),
            NothingToRestore { .. } => {
                "`qrd ssl restore` undoes `qrd ssl disable --temporary`; to turn TLS on, run `qrd ssl enable`".into()
            }
            EditedSince { .. } => {
                "merge by hand, or run `qrd ssl restore --force` to put the saved file back anyway".into()
            }
            ShadowedByAlterSystem { name, .. } => {
                format!("run `ALTER SYSTEM RESET {name}` and reload, then run this command again")
            }
            QuotedConnType { word, .. } => format!("write it as {word} (no quotes) and run again"),
            NotUtf8 { .. } => "compare the saved copy with the file by hand".into(),
            NoSettings => "connect as a superuser (-U postgres)".into(),
            Local(e) => e.hint().unwrap_or_default(),
            Write(e) => e.hint().unwrap_or_default(),
            Saved(SavedError::Damaged { path, copy }) => {
                format!("compare {} with {} by hand", copy.display(), path.display())
            }
            Saved(SavedError::NoManifest { dir, .. }) => format!(
                "{} is not a complete saved set: compare its files with the configuration by hand, then move it away",
                dir.display()
            ),
            Saved(_) => "run qrd as root or as the server's OS user (the owner of the data directory)".into(),
            Query(_) => "run again with -v for the statements qrd runs; the server log may say more".into(),
            Internal(_) => "nothing was changed; edit the lines by hand (qrd hba add/remove)".into(),
            Generate(_) => "check the --hostname values".into(),
            Install { .. } => "run qrd as root or as the server's OS user (the owner of the data directory)".into(),
            ProofFailed { .. } => {
                "look at the server log for SSL errors; with --keep-host plain rules stay, or remove \
                 the rule named above"
                    .into()
            }
            PlainStillFails { .. } => "check pg_hba.conf for the rule the installer's address needs".into(),
            RestoredButNoTls { dir, .. } => format!(
                "look at the server log for SSL errors; the saved state stays in {} until a restore proves TLS",
                dir.display()
            ),
        }
    }
}

impl From<qrd_conf::pgconf::PlanError> for TlsError {
    fn from(e: qrd_conf::pgconf::PlanError) -> Self {
        use qrd_conf::pgconf::PlanError;
        match e {
            PlanError::ShadowedByAlterSystem { name, file, line, value } => {
                TlsError::ShadowedByAlterSystem { name, file, line, value }
            }
            other => TlsError::Internal(other.to_string()),
        }
    }
}

/// Refused before anything changed (exit 4) rather than failed while working (exit 5).
fn is_refusal(e: &TlsError) -> bool {
    use TlsError::*;
    matches!(
        e,
        BadCertificate { .. }
            | BadKey { .. }
            | KeyMismatch { .. }
            | CaDidNotSign { .. }
            | Expired { .. }
            | NotYetValid { .. }
            | BadHostname(_)
            | TemporarilyDisabled { .. }
            | AlreadyDisabled { .. }
            | NothingToDisable
            | NothingToRestore { .. }
            | EditedSince { .. }
            | ShadowedByAlterSystem { .. }
            | QuotedConnType { .. }
    )
}
