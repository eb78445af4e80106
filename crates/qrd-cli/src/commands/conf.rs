//! `qrd conf get | set | tune`: postgresql.conf read and edited losslessly, values checked against the
//! server's `pg_settings`, the server told to reload, and a restart named (or done) when a setting needs it.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use qrd_conf::pgconf::{
    ConfTree, PlanError, PlanOptions, SettingInfo, VarType, needs_restart, plan_settings, validate,
};
use qrd_conf::write::{Applied, FileEdit};
use qrd_pg::Session;
use qrd_pg::serverconf::{self, SettingRow};
use qrd_pgbin::Tool;
use qrd_server::service::{After, Service};
use qrd_server::{PgCtl, RestartFailure};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, FileArgs, HelpArg, ToolArgs};
use crate::output::{note, write_checked};
use qrd_server::{CheckedWrite, FileKind, Located, WriteOptions};

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ConfArgs {
    #[command(subcommand)]
    pub command: ConfCommand,

    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Subcommand)]
pub enum ConfCommand {
    /// Show settings: the value the files give (and which file:line sets it) and the server's running value
    Get(GetArgs),
    /// Set settings in postgresql.conf (or with ALTER SYSTEM: --online), checked against the server first
    Set(SetArgs),
    /// The guide's values for a site of N nodes: listen_addresses, port 4432, max_connections (110 per node)
    Tune(TuneArgs),
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct GetArgs {
    /// Setting names (case-insensitive)
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,

    /// Print JSON
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// What `set` and `tune` share: how to apply.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Use ALTER SYSTEM (postgresql.auto.conf) through the connection instead of editing the file
    #[arg(long)]
    pub online: bool,

    /// Print the diff (or the ALTER SYSTEM statements) and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Write the file but do not reload the server
    #[arg(long)]
    pub no_reload: bool,

    /// Restart the server (pg_ctl restart -m fast) when a changed setting needs it
    #[arg(long)]
    pub restart: bool,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct SetArgs {
    /// NAME=VALUE pairs, e.g. max_connections=110 "listen_addresses=*"
    #[arg(required = true, value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub pairs: Vec<(String, String)>,

    #[command(flatten)]
    pub apply: ApplyArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct TuneArgs {
    /// Number of Qlik Sense nodes using this repository
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub nodes: u32,

    /// Each node's repository connection pool size (Qlik's default)
    #[arg(long, value_name = "SIZE", default_value_t = qrd_check::DEFAULT_POOL_SIZE)]
    pub pool_size: u32,

    /// listen_addresses: the addresses to accept connections on ('*' is every interface)
    #[arg(long, value_name = "ADDRS", default_value = "*")]
    pub listen: String,

    /// The port Qlik's services connect to
    #[arg(long = "set-port", value_name = "PORT", default_value_t = 4432)]
    pub set_port: u16,

    #[command(flatten)]
    pub apply: ApplyArgs,
    #[command(flatten)]
    pub help: HelpArg,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("{s:?} has no setting name"));
    }
    Ok((qrd_conf::pgconf::canonical_name(name), value.to_owned()))
}

pub async fn execute(args: ConfArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        ConfCommand::Get(a) => get(a).await,
        ConfCommand::Set(a) => set(a.pairs, &a.apply, &a.files, &a.conn, &a.tools).await,
        ConfCommand::Tune(a) => {
            let max = qrd_check::guide_max_connections(a.nodes, a.pool_size);
            note(format!(
                "the guide's values for {} node(s) with pools of {}: max_connections = {} × ({} + 20) = {max}",
                a.nodes, a.pool_size, a.nodes, a.pool_size
            ));
            let pairs = vec![
                ("listen_addresses".to_owned(), a.listen.clone()),
                ("port".to_owned(), a.set_port.to_string()),
                ("max_connections".to_owned(), max.to_string()),
            ];
            set(pairs, &a.apply, &a.files, &a.conn, &a.tools).await
        }
    }
}

/// The data directory: `--data-dir`, else the server's, else the main file's directory.
fn data_dir(loc: &Located, _files: &FileArgs) -> PathBuf {
    loc.data_dir()
}

fn load_tree(loc: &Located, files: &FileArgs) -> Result<ConfTree, CliError> {
    ConfTree::load_with_data_dir(&loc.path, &data_dir(loc, files))
        .map_err(|e| CliError::new(ExitStatus::Refused, e.to_string()).hint("fix the file at the place named above"))
}

async fn get(args: GetArgs) -> Result<ExitStatus, CliError> {
    let loc = qrd_server::locate(FileKind::Conf, &args.files.choice(), &args.conn.opts()).await?;
    let tree = load_tree(&loc, &args.files)?;
    let names: Vec<String> = args.names.iter().map(|n| qrd_conf::pgconf::canonical_name(n)).collect();
    let rows = match &loc.session {
        Some(s) => serverconf::settings(s, &names).await?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for name in &names {
        let source = tree.effective(name);
        let row = rows.iter().find(|r| &r.name == name);
        out.push(serde_json::json!({
            "name": name,
            "file": source.as_ref().map(|s| serde_json::json!({
                "value": s.value, "file": s.file, "line": s.line, "alter_system": s.auto_conf,
                "overrides_file": s.auto_conf_overrides_file(),
            })),
            "server": row.map(|r| serde_json::json!({
                "setting": r.setting, "unit": r.unit, "source": r.source, "pending_restart": r.pending_restart,
                "context": r.context,
            })),
        }));
        if args.json {
            continue;
        }
        match &source {
            Some(s) => {
                let how = if s.auto_conf { " (ALTER SYSTEM)" } else { "" };
                println!("{name} = {}  # {}:{}{how}", s.value, s.file.display(), s.line);
                if s.auto_conf_overrides_file() {
                    println!("  note: postgresql.auto.conf overrides what postgresql.conf says");
                }
            }
            None => println!("{name}: not set in the files (built-in default)"),
        }
        if let Some(r) = row {
            let unit = r.unit.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
            let pending = if r.pending_restart { ", changed in the files: restart pending" } else { "" };
            println!("  server: {}{unit}, from {}{pending}", r.setting, r.source);
        } else if loc.session.is_some() {
            println!("  server: no such setting");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("serialisable"));
    }
    Ok(ExitStatus::Success)
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

/// Checks every value against the server's pg_settings; returns the names that need a restart.
async fn check_values(session: &Session, pairs: &[(String, String)]) -> Result<Vec<String>, CliError> {
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
    if !problems.is_empty() {
        return Err(CliError::new(ExitStatus::Refused, format!("nothing changed:\n  {}", problems.join("\n  ")))
            .hint("fix the values above (the messages are the server's own)"));
    }
    Ok(restart)
}

async fn set(
    pairs: Vec<(String, String)>,
    apply: &ApplyArgs,
    files: &FileArgs,
    conn: &ConnectArgs,
    tools: &ToolArgs,
) -> Result<ExitStatus, CliError> {
    if apply.online {
        return set_online(pairs, apply, conn).await;
    }
    let loc = qrd_server::locate(FileKind::Conf, &files.choice(), &conn.opts()).await?;
    match &loc.session {
        Some(s) => {
            check_values(s, &pairs).await?;
        }
        None => note("warning: no server connection: values are not checked against pg_settings"),
    }
    let tree = load_tree(&loc, files)?;

    // Each setting goes where the server reads it last outside postgresql.auto.conf (an included file,
    // possibly), so the edit is not silently overridden by a later line.
    let plan = plan_settings(&tree, &pairs, PlanOptions::default()).map_err(|e| match e {
        PlanError::ShadowedByAlterSystem { ref name, .. } => CliError::new(
            ExitStatus::Refused,
            format!("{e}: editing the file would change nothing; nothing was changed"),
        )
        .hint(format!("use --online to change it with ALTER SYSTEM, or run ALTER SYSTEM RESET {name} first")),
        PlanError::NotInTree(_) => CliError::new(ExitStatus::Failed, e.to_string()),
        PlanError::Edit { source, .. } => CliError::new(ExitStatus::Refused, source.to_string()),
    })?;
    for (file, change) in &plan.changes {
        if !change.earlier_duplicates.is_empty() {
            note(format!(
                "note: {} also sets {} earlier (line(s) {:?}); the line qrd edits is the one that wins",
                file.display(),
                change.name,
                change.earlier_duplicates
            ));
        }
    }
    let edits = plan.edits;
    let opts = WriteOptions { dry_run: apply.dry_run, reload: !apply.no_reload };
    let changed = edits.iter().any(FileEdit::is_change);
    // All files or none: one check and one reload for the lot, every file put back on any failure.
    let mut change = CheckedWrite::new();
    for e in edits {
        change.add(e, FileKind::Conf);
    }
    let written = write_checked(&change, loc.session.as_ref(), opts).await?;
    if apply.dry_run || (!changed && loc.session.is_none()) {
        return Ok(ExitStatus::Success);
    }
    let mut restart = Vec::new();
    if let Some(session) = &loc.session {
        // What the server says about the files on disk now: also when this run did not reload (--no-reload),
        // or wrote nothing because an earlier run did and the restart is still owed.
        let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
        restart = serverconf::restart_owed(session, &names).await?;
    }
    finish_restart(restart, &written.applied, apply, &loc, files, tools).await
}

async fn set_online(
    pairs: Vec<(String, String)>,
    apply: &ApplyArgs,
    conn: &ConnectArgs,
) -> Result<ExitStatus, CliError> {
    let session = Session::open(&conn.opts()).await?;
    check_values(&session, &pairs).await?;
    if apply.dry_run {
        for (name, value) in &pairs {
            let n = qrd_pg::quote::ident(name).map_err(|e| CliError::new(ExitStatus::Refused, e.to_string()))?;
            let v = qrd_pg::quote::literal(value).map_err(|e| CliError::new(ExitStatus::Refused, e.to_string()))?;
            println!("ALTER SYSTEM SET {n} TO {v};");
        }
        println!("SELECT pg_reload_conf();");
        return Ok(ExitStatus::Success);
    }
    for (name, value) in &pairs {
        serverconf::alter_system(&session, name, value)
            .await
            .map_err(|m| CliError::new(ExitStatus::Refused, format!("ALTER SYSTEM SET {name}: {m}")))?;
        note(format!("ALTER SYSTEM SET {name} = {value:?}"));
    }
    if !apply.no_reload {
        serverconf::reload(&session).await?;
        note("reloaded");
    }
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
    let pending: Vec<String> = serverconf::settings(&session, &names)
        .await?
        .into_iter()
        .filter(|r| r.pending_restart)
        .map(|r| r.name)
        .collect();
    if !pending.is_empty() {
        note(format!(
            "restart needed for: {} (run `qrd conf set --restart …` on the server's machine)",
            pending.join(", ")
        ));
    }
    Ok(ExitStatus::Success)
}

/// How long pg_ctl may take to stop and start the server again (a checkpoint on a busy server is slow).
const RESTART_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Says what needs a restart, or restarts when asked: through what manages the server (pg_ctlcluster, the
/// systemd unit, else pg_ctl as the data directory's owner with its groups). When the server does not come
/// back with the new files (`applied`), the previous ones go back and the server is started again.
async fn finish_restart(
    restart: Vec<String>,
    applied: &[Applied],
    apply: &ApplyArgs,
    loc: &Located,
    files: &FileArgs,
    tools: &ToolArgs,
) -> Result<ExitStatus, CliError> {
    if restart.is_empty() {
        return Ok(ExitStatus::Success);
    }
    if !apply.restart {
        note(format!("restart needed for: {} (pass --restart, or restart the PostgreSQL service)", restart.join(", ")));
        return Ok(ExitStatus::Success);
    }
    let Some(server) = &loc.server else {
        return Err(CliError::new(ExitStatus::Refused, "--restart needs the server's version: no connection")
            .hint("restart the PostgreSQL service yourself"));
    };
    let version = qrd_pgbin::PgVersion::from_version_num(server.version_num);
    let dir = data_dir(loc, files);
    let service = Service::detect(&dir, Path::new(&server.config_file), || {
        let pg_ctl = tools.finder().find(Tool::PgCtl, &version).map_err(|e| {
            let hint = e.hint();
            CliError::new(ExitStatus::Refused, e.to_string()).hint(hint)
        })?;
        PgCtl::for_owner(&pg_ctl.path, &dir).map(|c| c.timeout(RESTART_TIMEOUT)).map_err(|e| {
            CliError::new(ExitStatus::Refused, e.to_string())
                .hint("run qrd as root or as the data directory's owner, or restart the PostgreSQL service yourself")
        })
    })?;
    tracing::debug!(%service, data_dir = %dir.display(), "restarting");
    match service.restart_or_roll_back(applied) {
        Ok(()) => {
            note(format!("restarted with {service} (for {})", restart.join(", ")));
            Ok(ExitStatus::Success)
        }
        Err(failure) => Err(restart_failed(&failure, &service)),
    }
}

fn restart_failed(failure: &RestartFailure, service: &Service) -> CliError {
    let hint = match (&failure.after, &failure.not_restored) {
        (_, Some(n)) => format!(
            "copy {} over {} yourself now, then {}",
            n.backup.display(),
            n.file.display(),
            if failure.is_down() { format!("start the server ({service})") } else { "reload".to_owned() }
        ),
        (After::RunsAgain, None) => {
            "the server's own words are above: fix the value and run the command again".to_owned()
        }
        (After::NeverStopped, None) => {
            "see above why the server could not be restarted, then run the command again".to_owned()
        }
        (After::StartedLate, None) => {
            "the server is still starting: watch its log, then check the values with `qrd conf get`".to_owned()
        }
        (After::Down { .. }, None) => format!(
            "start the server now ({service}); if it still fails, put the previous file back from its .qrd-*.bak copy \
             beside it"
        ),
    };
    CliError::new(ExitStatus::Failed, failure.to_string()).hint(hint)
}
