//! What the server says about its configuration files: where they are, what it knows of each setting
//! (`pg_settings`), the errors in the files as they are on disk now (`pg_hba_file_rules`,
//! `pg_file_settings` parse the files afresh, so a file can be checked before the server loads it), and a
//! reload that returns only once the server has processed it.

use std::time::Duration;

use qrd_pgbin::{Check, WaitError};

use crate::inventory::QueryError;
use crate::session::Session;
use crate::sql_template;
use crate::template::{Template, Vars};

const FACTS: Template = sql_template!("conf/facts.sql");
const SETTINGS: Template = sql_template!("conf/settings.sql");
const HBA_ERRORS: Template = sql_template!("conf/hba_errors.sql");
const FILE_ERRORS: Template = sql_template!("conf/file_errors.sql");
const LOAD_TIME: Template = sql_template!("conf/load_time.sql");
const RELOAD: Template = sql_template!("conf/reload.sql");
const ALTER_SYSTEM: Template = sql_template!("conf/alter_system.sql");
const APPLIED_ERRORS: Template = sql_template!("conf/applied_errors.sql");
const MEMBERSHIPS: Template = sql_template!("conf/memberships.sql");
const MESSAGES_IN_ENGLISH: Template = sql_template!("conf/messages_in_english.sql");
const FILES_READ: Template = sql_template!("conf/files_read.sql");

/// How long to wait for a reload to be processed before saying so.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerFacts {
    pub data_directory: String,
    pub config_file: String,
    pub hba_file: String,
    /// `server_version_num`, e.g. 160014.
    pub version_num: u32,
    pub major: u32,
    pub password_encryption: String,
    pub ssl: bool,
}

/// One `pg_settings` row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettingRow {
    pub name: String,
    pub setting: String,
    pub unit: Option<String>,
    pub vartype: String,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    pub enumvals: Vec<String>,
    /// `postmaster` settings need a restart.
    pub context: String,
    pub pending_restart: bool,
    pub source: String,
    pub sourcefile: Option<String>,
    pub sourceline: Option<i32>,
}

/// An error the server finds in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    pub file: Option<String>,
    pub line: Option<i32>,
    pub name: Option<String>,
    pub error: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if let Some(name) = &self.name {
            write!(f, "{name}: ")?;
        }
        f.write_str(&self.error)
    }
}

fn query_err(t: &Template, session: &Session) -> impl FnOnce(tokio_postgres::Error) -> QueryError {
    let name = t.name;
    let db = session.target().dbname.clone();
    move |e| QueryError::query(name, &db, &e)
}

/// Where the server's files are, its version, and the two settings commands decide by (`password_encryption`,
/// `ssl`).
pub async fn facts(session: &Session) -> Result<ServerFacts, QueryError> {
    let r = session.client().query_one(FACTS.text, &[]).await.map_err(query_err(&FACTS, session))?;
    Ok(ServerFacts {
        data_directory: r.get("data_directory"),
        config_file: r.get("config_file"),
        hba_file: r.get("hba_file"),
        version_num: r.get::<_, i32>("version_num") as u32,
        major: r.get::<_, i32>("version_num") as u32 / 10000,
        password_encryption: r.get("password_encryption"),
        ssl: r.get("ssl"),
    })
}

/// The `pg_settings` rows of `names` (lower case); unknown names are simply absent.
pub async fn settings(session: &Session, names: &[String]) -> Result<Vec<SettingRow>, QueryError> {
    let rows = session.client().query(SETTINGS.text, &[&names]).await.map_err(query_err(&SETTINGS, session))?;
    Ok(rows
        .iter()
        .map(|r| SettingRow {
            name: r.get("name"),
            setting: r.get("setting"),
            unit: r.get("unit"),
            vartype: r.get("vartype"),
            min_val: r.get("min_val"),
            max_val: r.get("max_val"),
            enumvals: r.get("enumvals"),
            context: r.get("context"),
            pending_restart: r.get("pending_restart"),
            source: r.get("source"),
            sourcefile: r.get("sourcefile"),
            sourceline: r.get("sourceline"),
        })
        .collect())
}

/// Which of `names` (lower case) wait for a restart: their value in the files as they are on disk now
/// differs from the running one and only a restart applies it. Unlike `pending_restart` alone, this also
/// holds when the server has not reloaded since the files changed.
pub async fn restart_owed(session: &Session, names: &[String]) -> Result<Vec<String>, QueryError> {
    session.client().query_one(FILES_READ.text, &[]).await.map_err(query_err(&FILES_READ, session))?;
    Ok(settings(session, names).await?.into_iter().filter(|r| r.pending_restart).map(|r| r.name).collect())
}

/// Every role with the roles it is directly a member of.
pub async fn memberships(session: &Session) -> Result<Vec<(String, Vec<String>)>, QueryError> {
    let rows = session.client().query(MEMBERSHIPS.text, &[]).await.map_err(query_err(&MEMBERSHIPS, session))?;
    Ok(rows.iter().map(|r| (r.get("role"), r.get("member_of"))).collect())
}

/// Errors in pg_hba.conf as it is on disk now.
pub async fn hba_errors(session: &Session) -> Result<Vec<FileError>, QueryError> {
    let rows = session.client().query(HBA_ERRORS.text, &[]).await.map_err(query_err(&HBA_ERRORS, session))?;
    Ok(rows
        .iter()
        .map(|r| FileError { file: r.get("file_name"), line: r.get("line_number"), name: None, error: r.get("error") })
        .collect())
}

/// Errors in postgresql.conf (and its includes, and postgresql.auto.conf) as they are on disk now.
pub async fn conf_errors(session: &Session) -> Result<Vec<FileError>, QueryError> {
    conf_errors_from(session, &FILE_ERRORS).await
}

/// Errors in postgresql.conf as the server applies it: [`conf_errors`] plus values it would not apply
/// (only the server can judge some, e.g. time zone names). Meaningful after a reload, and before an edit.
pub async fn applied_conf_errors(session: &Session) -> Result<Vec<FileError>, QueryError> {
    conf_errors_from(session, &APPLIED_ERRORS).await
}

async fn conf_errors_from(session: &Session, template: &Template) -> Result<Vec<FileError>, QueryError> {
    if let Err(e) = session.client().batch_execute(MESSAGES_IN_ENGLISH.text).await {
        tracing::debug!("messages stay translated: {}", crate::connect::server_message(&e));
    }
    let rows = session.client().query(template.text, &[]).await.map_err(query_err(template, session))?;
    Ok(rows
        .iter()
        .map(|r| FileError {
            file: r.get("sourcefile"),
            line: r.get("sourceline"),
            name: r.get("name"),
            error: r.get("error"),
        })
        .collect())
}

/// Reloads the configuration and waits until this session has seen the reload (the postmaster passes it
/// on to its children only after processing it). Returns whether it was seen within the wait.
pub async fn reload(session: &Session) -> Result<bool, QueryError> {
    let c = session.client();
    let load_time = || async {
        c.query_one(LOAD_TIME.text, &[])
            .await
            .map(|r| r.get::<_, String>("loaded"))
            .map_err(query_err(&LOAD_TIME, session))
    };
    let before = load_time().await?;
    c.query_one(RELOAD.text, &[]).await.map_err(query_err(&RELOAD, session))?;
    let seen = qrd_pgbin::poll_until(std::time::Instant::now() + RELOAD_WAIT, "the server has reloaded", || async {
        let now = load_time().await?;
        Ok(if now != before { Check::Done(()) } else { Check::Pending(format!("configuration loaded at {now}")) })
    })
    .await;
    match seen {
        Ok(()) => Ok(true),
        Err(WaitError::Failed(e)) => Err(e),
        Err(e) => {
            tracing::warn!("{e}");
            Ok(false)
        }
    }
}

/// `ALTER SYSTEM SET` refused by the server (its own message: an invalid value, a read-only setting).
#[derive(Debug, Clone, thiserror::Error)]
#[error("ALTER SYSTEM SET {name}: {message}")]
pub struct AlterSystemError {
    pub name: String,
    pub message: String,
}

/// `ALTER SYSTEM SET name TO 'value'` (the server validates the value).
pub async fn alter_system(session: &Session, name: &str, value: &str) -> Result<(), AlterSystemError> {
    let error = |message: String| AlterSystemError { name: name.to_owned(), message };
    let sql = ALTER_SYSTEM
        .render_statement(&Vars::new().set("name", name.to_lowercase()).set("value", value))
        .map_err(|e| error(e.to_string()))?;
    session.client().batch_execute(&sql).await.map_err(|e| error(crate::connect::server_message(&e)))
}
