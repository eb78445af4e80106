//! Settings as `qrd conf` reads and changes them: where a setting's value comes from (the files, and what
//! the server runs with), values checked against the server's own catalog before anything is written,
//! `ALTER SYSTEM` for online changes, and the restart a setting owes, done by whoever runs the server.

use qrd_exit::{ExitStatus, UserError};
use std::path::{Path, PathBuf};

use qrd_conf::pgconf::{
    ConfPlan, ConfTree, PlanError, PlanOptions, SettingInfo, VarType, needs_restart, plan_settings, validate,
};
use qrd_pg::Session;
use qrd_pg::inventory::QueryError;
use qrd_pg::serverconf::{self, ServerFacts, SettingRow};
use qrd_pgbin::{Finder, PgVersion, Tool};

use crate::pgctl::PgCtl;
use crate::service::Service;

/// How long pg_ctl may take to stop and start the server.
const RESTART_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// One setting as the files give it and as the server runs with it (`qrd conf get`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettingReport {
    pub name: String,
    pub file: Option<FileValue>,
    /// `None` without a connection, or when the server has no such setting.
    pub server: Option<ServerValue>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FileValue {
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
    pub alter_system: bool,
    /// `ALTER SYSTEM` overrides what postgresql.conf says.
    pub overrides_file: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerValue {
    pub setting: String,
    pub unit: Option<String>,
    pub source: String,
    pub pending_restart: bool,
    pub context: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Values the server would not take, in its own words.
    #[error("nothing changed:\n  {}", problems.join("\n  "))]
    Invalid { problems: Vec<String> },
    #[error("{0}: editing the file would change nothing; nothing was changed")]
    Shadowed(PlanError),
    #[error("{0}")]
    Plan(PlanError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    AlterSystem(#[from] serverconf::AlterSystemError),
    #[error("{0}")]
    NoPgCtl(qrd_pgbin::FindError),
    #[error("{0}")]
    Owner(crate::pgctl::PgCtlError),
    /// The restart did not bring the server back with the new files (what happened then is in the text).
    #[error("{failure}")]
    Restart { failure: Box<crate::service::RestartFailure>, hint: String },
}

impl UserError for SettingsError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            SettingsError::Query(e) => e.exit_status(),
            SettingsError::Restart { .. } => ExitStatus::Failed,
            // Refused before anything changed.
            SettingsError::Invalid { .. }
            | SettingsError::Shadowed(_)
            | SettingsError::Plan(_)
            | SettingsError::AlterSystem(_)
            | SettingsError::NoPgCtl(_)
            | SettingsError::Owner(_) => ExitStatus::Refused,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl SettingsError {
    fn hint_text(&self) -> String {
        match self {
            SettingsError::Invalid { .. } => "fix the values above (the messages are the server's own)".into(),
            SettingsError::Shadowed(PlanError::ShadowedByAlterSystem { name, .. }) => {
                format!("use --online to change it with ALTER SYSTEM, or run ALTER SYSTEM RESET {name} first")
            }
            SettingsError::Shadowed(_) | SettingsError::Plan(_) => "fix the file at the place named above".into(),
            SettingsError::Query(_) => "run again with -v for the statements qrd runs".into(),
            SettingsError::AlterSystem(_) => "fix the value (the message is the server's own)".into(),
            SettingsError::NoPgCtl(e) => e.hint().unwrap_or_default(),
            SettingsError::Restart { hint, .. } => hint.clone(),
            SettingsError::Owner(_) => {
                "run qrd as root or as the data directory's owner, or restart the PostgreSQL service yourself".into()
            }
        }
    }
}

/// Where each of `names` gets its value: the files (`tree`) and, with a session, the running server.
pub async fn report(
    tree: &ConfTree,
    session: Option<&Session>,
    names: &[String],
) -> Result<Vec<SettingReport>, QueryError> {
    let rows = match session {
        Some(s) => serverconf::settings(s, names).await?,
        None => Vec::new(),
    };
    Ok(names
        .iter()
        .map(|name| SettingReport {
            name: name.clone(),
            file: tree.effective(name).map(|s| FileValue {
                overrides_file: s.auto_conf_overrides_file(),
                value: s.value,
                file: s.file,
                line: s.line,
                alter_system: s.auto_conf,
            }),
            server: rows.iter().find(|r| &r.name == name).map(|r| ServerValue {
                setting: r.setting.clone(),
                unit: r.unit.clone(),
                source: r.source.clone(),
                pending_restart: r.pending_restart,
                context: r.context.clone(),
            }),
        })
        .collect())
}

/// `pg_settings` row → the validator's view of it.
fn setting_info(r: &SettingRow) -> SettingInfo {
    SettingInfo {
        name: r.name.clone(),
        vartype: match r.vartype.as_str() {
            "bool" => VarType::Bool,
            "integer" => VarType::Integer,
            "real" => VarType::Real,
            "enum" => VarType::Enum,
            _ => VarType::String,
        },
        unit: r.unit.clone(),
        min_val: r.min_val.clone(),
        max_val: r.max_val.clone(),
        enumvals: r.enumvals.clone(),
        context: r.context.clone(),
    }
}

/// Checks every value against the server's pg_settings, with the server's wording for a bad one. Returns
/// the names of the settings that take effect only after a restart.
pub async fn check_values(session: &Session, pairs: &[(String, String)]) -> Result<Vec<String>, SettingsError> {
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
    let rows = serverconf::settings(session, &names).await?;
    let mut restart = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in pairs {
        match rows.iter().find(|r| &r.name == name) {
            // Custom (extension) settings have a dot; the server accepts them without knowing them.
            None if name.contains('.') => {}
            None => problems.push(format!("unrecognized configuration parameter \"{name}\"")),
            Some(row) => {
                let info = setting_info(row);
                match validate(value, &info) {
                    Ok(_) if needs_restart(&info) => restart.push(name.clone()),
                    Ok(_) => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
    }
    if problems.is_empty() { Ok(restart) } else { Err(SettingsError::Invalid { problems }) }
}

/// The file edits for `pairs`: each setting where it takes effect; an `ALTER SYSTEM` value that would
/// override the edit is refused. Earlier duplicate lines are noted.
pub fn plan_file_edits(tree: &ConfTree, pairs: &[(String, String)]) -> Result<ConfPlan, SettingsError> {
    let plan = plan_settings(tree, pairs, PlanOptions::default()).map_err(|e| match e {
        e @ PlanError::ShadowedByAlterSystem { .. } => SettingsError::Shadowed(e),
        e => SettingsError::Plan(e),
    })?;
    for (file, change) in &plan.changes {
        if !change.earlier_duplicates.is_empty() {
            tracing::info!(
                "note: {} also sets {} earlier (line(s) {:?}); the line qrd edits is the one that wins",
                file.display(),
                change.name,
                change.earlier_duplicates
            );
        }
    }
    Ok(plan)
}

/// The statements of an online change, as `--dry-run` prints them.
pub fn alter_system_script(pairs: &[(String, String)]) -> Result<Vec<String>, qrd_pg::quote::QuoteError> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        out.push(format!("ALTER SYSTEM SET {} TO {};", qrd_pg::quote::ident(name)?, qrd_pg::quote::literal(value)?));
    }
    out.push("SELECT pg_reload_conf();".to_owned());
    Ok(out)
}

/// `ALTER SYSTEM SET` each pair (the server validates it), reload unless told not to, and return the names
/// still pending a restart.
pub async fn alter_system(
    session: &Session,
    pairs: &[(String, String)],
    reload: bool,
) -> Result<Vec<String>, SettingsError> {
    for (name, value) in pairs {
        serverconf::alter_system(session, name, value).await?;
        tracing::info!("ALTER SYSTEM SET {name} = {value:?}");
    }
    if reload {
        serverconf::reload(session).await?;
        tracing::info!("reloaded");
    }
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
    Ok(serverconf::settings(session, &names).await?.into_iter().filter(|r| r.pending_restart).map(|r| r.name).collect())
}

/// Whoever restarts this server: its service manager, else pg_ctl of the server's major (from `finder`) as
/// the data directory's owner.
pub fn service_for(server: &ServerFacts, data_dir: &Path, finder: &Finder) -> Result<Service, SettingsError> {
    let version = PgVersion::from_version_num(server.version_num);
    Service::detect(data_dir, Path::new(&server.config_file), || {
        let pg_ctl = finder.find(Tool::PgCtl, &version).map_err(SettingsError::NoPgCtl)?;
        PgCtl::for_owner(&pg_ctl.path, data_dir).map(|c| c.timeout(RESTART_TIMEOUT)).map_err(SettingsError::Owner)
    })
}

/// After the files of `names` were written (`applied`): the restart the server owes for them, asked from
/// the server (also when this run did not reload, or wrote nothing because an earlier run did). Without
/// `restart` (the data directory and where pg_ctl is found) it is named; with it, it is done by whoever runs
/// the server, and when the server does not come back the previous files go back and it is started again.
pub async fn finish(
    session: &Session,
    names: &[String],
    applied: &[qrd_conf::write::Applied],
    restart: Option<(&Path, &Finder)>,
) -> Result<(), SettingsError> {
    let owed = serverconf::restart_owed(session, names).await?;
    if owed.is_empty() {
        return Ok(());
    }
    let Some((data_dir, finder)) = restart else {
        tracing::info!("restart needed for: {} (pass --restart, or restart the PostgreSQL service)", owed.join(", "));
        return Ok(());
    };
    let server = serverconf::facts(session).await?;
    let service = service_for(&server, data_dir, finder)?;
    tracing::debug!(%service, "restarting");
    match service.restart_or_roll_back(applied).await {
        Ok(()) => {
            tracing::info!("restarted with {service} (for {})", owed.join(", "));
            Ok(())
        }
        Err(failure) => {
            let hint = failure.hint(&service);
            Err(SettingsError::Restart { failure: Box::new(failure), hint })
        }
    }
}
