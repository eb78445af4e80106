//! A restore onto a machine with another host name (the guide's "Restoring a Qlik Sense site to a machine
//! with a different hostname"): the central node's host name in QSR changed the way the repository's own
//! `Repository.exe -bootstrap -standalone -restorehostname` changes it, the shared persistence folders
//! moved to new UNC paths, and the rest of the runbook for the Windows side printed as the guide spells it.

use qrd_exit::{ExitStatus, UserError};
use qrd_pg::inventory::QueryError;
use qrd_pg::sql_template;
use qrd_pg::template::{Template, Vars};

use crate::manifest::Site;

const SITE_TABLES: Template = sql_template!("restore/site_tables.sql");
const RENAME_HOST: Template = sql_template!("restore/rename_host.sql");
const RENAME_SHARE: Template = sql_template!("restore/rename_share.sql");

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct Rename {
    pub new_host: String,
    /// The old central host name; default: the central node the manifest recorded.
    pub old_host: Option<String>,
    /// Shared folder prefixes, old → new (`\\OLDHOST\QlikShare=\\NEWHOST\QlikShare`).
    pub shares: Vec<(String, String)>,
}

/// What was changed (or, on a dry run, the statements that would run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Renamed {
    pub old_host: String,
    pub new_host: String,
    /// Rows changed: the central node, the LocalConfigs rows, the shared persistence rows per prefix.
    pub central_nodes: u64,
    pub local_configs: u64,
    pub share_rows: Vec<u64>,
    pub statements: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    #[error("the bundle records no central node and no --old-hostname was given: the old host name is unknown")]
    NoOldHost,
    #[error("QSR lacks the table(s) a new-hostname restore changes: {}; nothing was changed", missing.join(", "))]
    MissingTables { missing: Vec<String> },
    #[error("QSR has no central node named {old:?} (the central node is named {found:?}); nothing was changed")]
    NoCentralNode { old: String, found: Vec<String> },
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl UserError for RenameError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            RenameError::Query(e) => e.exit_status(),
            // The databases are in place; the renaming could not be done.
            RenameError::NoOldHost | RenameError::MissingTables { .. } | RenameError::NoCentralNode { .. } => {
                ExitStatus::Failed
            }
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl RenameError {
    fn hint_text(&self) -> String {
        match self {
            RenameError::NoOldHost => "pass --old-hostname NAME (the central node's host name on the old machine)".into(),
            RenameError::MissingTables { .. } => {
                "this Qlik release keeps its host names elsewhere: use Repository.exe -bootstrap -standalone -restorehostname on the new machine".into()
            }
            RenameError::NoCentralNode { .. } => "pass the central node's old name with --old-hostname".into(),
            RenameError::Query(_) => "the restored databases are in place; run again with -v to see the statements".into(),
        }
    }
}

/// The old host name: given, else the manifest's central node.
pub fn old_host(rename: &Rename, site: Option<&Site>) -> Result<String, RenameError> {
    rename
        .old_host
        .clone()
        .or_else(|| site.and_then(|s| s.nodes.iter().find(|n| n.is_central)).map(|n| n.host_name.clone()))
        .ok_or(RenameError::NoOldHost)
}

fn statements(t: &Template, vars: &Vars) -> Result<Vec<String>, QueryError> {
    t.render_statements(vars).map_err(|e| QueryError::Query {
        sql: t.name,
        database: "QSR".into(),
        message: e.to_string(),
    })
}

/// The statements of `rename` (for `--dry-run` and the report).
pub fn plan(rename: &Rename, old: &str) -> Result<Vec<String>, QueryError> {
    let mut out = statements(&RENAME_HOST, &Vars::new().set("old", old).set("new", rename.new_host.as_str()))?;
    for (from, to) in &rename.shares {
        out.extend(statements(&RENAME_SHARE, &Vars::new().set("old", from.as_str()).set("new", to.as_str()))?);
    }
    Ok(out)
}

/// Changes the host names (and share paths) in QSR, in one transaction on `client` (a connection to QSR).
pub async fn apply(
    client: &tokio_postgres::Client,
    rename: &Rename,
    site: Option<&Site>,
) -> Result<Renamed, RenameError> {
    let old = old_host(rename, site)?;
    let err = |t: &Template| {
        let name = t.name;
        move |e: tokio_postgres::Error| QueryError::query(name, "QSR", &e)
    };
    let tables = client.query(SITE_TABLES.text, &[]).await.map_err(err(&SITE_TABLES))?;
    let mut missing: Vec<String> =
        tables.iter().filter(|r| !r.get::<_, bool>("present")).map(|r| r.get::<_, String>("table")).collect();
    if rename.shares.is_empty() {
        missing.retain(|t| t != "ServiceClusterSettingsSharedPersistenceProperties");
    }
    if !missing.is_empty() {
        return Err(RenameError::MissingTables { missing });
    }
    let host_statements =
        statements(&RENAME_HOST, &Vars::new().set("old", old.as_str()).set("new", rename.new_host.as_str()))?;
    client.batch_execute("BEGIN").await.map_err(err(&RENAME_HOST))?;
    let result = async {
        let central_nodes = client.execute(host_statements[0].as_str(), &[]).await.map_err(err(&RENAME_HOST))?;
        if central_nodes == 0 {
            let found = client
                .query("SELECT \"HostName\" FROM public.\"ServerNodeConfigurations\" WHERE \"IsCentral\"", &[])
                .await
                .map_err(err(&RENAME_HOST))?
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect();
            return Err(RenameError::NoCentralNode { old: old.clone(), found });
        }
        let local_configs = client.execute(host_statements[1].as_str(), &[]).await.map_err(err(&RENAME_HOST))?;
        let mut share_rows = Vec::new();
        for (from, to) in &rename.shares {
            for s in statements(&RENAME_SHARE, &Vars::new().set("old", from.as_str()).set("new", to.as_str()))? {
                share_rows.push(client.execute(s.as_str(), &[]).await.map_err(err(&RENAME_SHARE))?);
            }
        }
        Ok((central_nodes, local_configs, share_rows))
    }
    .await;
    match result {
        Ok((central_nodes, local_configs, share_rows)) => {
            client.batch_execute("COMMIT").await.map_err(err(&RENAME_HOST))?;
            tracing::info!(
                "QSR: the central node and {local_configs} LocalConfigs row(s) renamed {old:?} → {:?}",
                rename.new_host
            );
            Ok(Renamed {
                statements: plan(rename, &old)?,
                old_host: old,
                new_host: rename.new_host.clone(),
                central_nodes,
                local_configs,
                share_rows,
            })
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// The rest of the runbook on the new Windows machine, in the guide's order ("Restoring a Qlik Sense site to
/// a machine with a different hostname", steps 1–2 and 5–8; qrd did step 4, the databases).
pub fn runbook(new_host: &str) -> Vec<String> {
    vec![
        "Restore the certificates that secure the Qlik Sense services (the guide's \"Restoring certificates\") \
         before anything starts: they also encrypt the data-connection passwords kept in QSR, which must \
         otherwise be entered again."
            .to_owned(),
        "Install Qlik Sense with \"Start the Qlik Sense services when the installation has completed\" \
         deselected (if not done yet), pointing at this repository database."
            .to_owned(),
        "Restore the log and application data to the file share, and any supporting content to its original \
         location."
            .to_owned(),
        format!(
            "On {new_host}, in a Command Prompt with administrator privileges, in \
             \"C:\\Program Files\\Qlik\\Sense\\Repository\": repository.exe -bootstrap -standalone -restorehostname"
        ),
        "When it prints \"[INFO] Entering main startup phase...\", start the Qlik Sense Service Dispatcher (without \
         it the host name update does not complete); wait for \"Bootstrap mode has terminated. Press ENTER to \
         exit..\" and check the logs for errors."
            .to_owned(),
        "Start the Qlik Sense services, in the guide's order, beginning with the Qlik Sense Repository Service \
         (QRS)."
            .to_owned(),
        "Rim nodes of a multi-node site must be reset: remove them, then add them again.".to_owned(),
    ]
}
