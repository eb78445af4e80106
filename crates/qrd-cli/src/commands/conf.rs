//! `qrd conf get | set | tune`: postgresql.conf read and edited losslessly, values checked against the
//! server's `pg_settings`, the server told to reload, and a restart named (or done) when a setting needs it.

use clap::{Args, Subcommand};
use qrd_conf::pgconf::ConfTree;
use qrd_pg::Session;
use qrd_server::{CheckedWrite, FileKind, Located, WriteOptions, settings};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, FileArgs, ToolArgs};
use crate::output::{note, write_checked};

#[derive(Debug, Args)]
pub struct ConfArgs {
    #[command(subcommand)]
    pub command: ConfCommand,
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
pub struct GetArgs {
    /// Setting names (case-insensitive)
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// What `set` and `tune` share: how to apply, and to which server and files.
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
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// NAME=VALUE pairs, e.g. max_connections=110 "listen_addresses=*"
    #[arg(required = true, value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub pairs: Vec<(String, String)>,
    #[command(flatten)]
    pub apply: ApplyArgs,
}

#[derive(Debug, Args)]
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
        ConfCommand::Set(a) => set(a.pairs, &a.apply).await,
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
            set(pairs, &a.apply).await
        }
    }
}

fn load_tree(loc: &Located) -> Result<ConfTree, CliError> {
    Ok(ConfTree::load_with_data_dir(&loc.path, &loc.data_dir())?)
}

async fn get(args: GetArgs) -> Result<ExitStatus, CliError> {
    let loc = qrd_server::locate(FileKind::Conf, &args.files.choice(), &args.conn.opts()).await?;
    let tree = load_tree(&loc)?;
    let names: Vec<String> = args.names.iter().map(|n| qrd_conf::pgconf::canonical_name(n)).collect();
    let report = settings::report(&tree, loc.session.as_ref(), &names).await?;
    if args.json {
        crate::output::print_json(&report);
        return Ok(ExitStatus::Success);
    }
    for r in &report {
        match &r.file {
            Some(f) => {
                let how = if f.alter_system { " (ALTER SYSTEM)" } else { "" };
                println!("{} = {}  # {}:{}{how}", r.name, f.value, f.file.display(), f.line);
                if f.overrides_file {
                    println!("  note: postgresql.auto.conf overrides what postgresql.conf says");
                }
            }
            None => println!("{}: not set in the files (built-in default)", r.name),
        }
        match &r.server {
            Some(v) => {
                let unit = v.unit.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
                let pending = if v.pending_restart { ", changed in the files: restart pending" } else { "" };
                println!("  server: {}{unit}, from {}{pending}", v.setting, v.source);
            }
            None if loc.session.is_some() => println!("  server: no such setting"),
            None => {}
        }
    }
    Ok(ExitStatus::Success)
}

async fn set(pairs: Vec<(String, String)>, apply: &ApplyArgs) -> Result<ExitStatus, CliError> {
    if apply.online {
        return set_online(pairs, apply).await;
    }
    let loc = qrd_server::locate(FileKind::Conf, &apply.files.choice(), &apply.conn.opts()).await?;
    match &loc.session {
        Some(s) => drop(settings::check_values(s, &pairs).await?),
        None => tracing::warn!("no server connection: values are not checked against pg_settings"),
    }
    let plan = settings::plan_file_edits(&load_tree(&loc)?, &pairs)?;
    let changed = plan.is_change();
    let mut change = CheckedWrite::new();
    for e in plan.edits {
        change.add(e, FileKind::Conf);
    }
    // All files or none: one check and one reload for the lot, every file put back on any failure.
    let opts = WriteOptions { dry_run: apply.dry_run, reload: !apply.no_reload };
    let written = write_checked(&change, loc.session.as_ref(), opts).await?;
    if apply.dry_run || (!changed && loc.session.is_none()) {
        return Ok(ExitStatus::Success);
    }
    let Some(session) = &loc.session else { return Ok(ExitStatus::Success) };
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
    let restart = apply.restart.then(|| (loc.data_dir(), apply.tools.finder()));
    let restart = restart.as_ref().map(|(dir, finder)| (dir.as_path(), finder));
    settings::finish(session, &names, &written.applied, restart).await?;
    Ok(ExitStatus::Success)
}

async fn set_online(pairs: Vec<(String, String)>, apply: &ApplyArgs) -> Result<ExitStatus, CliError> {
    let session = Session::open(&apply.conn.opts()).await?;
    settings::check_values(&session, &pairs).await?;
    if apply.dry_run {
        let script = settings::alter_system_script(&pairs)?;
        script.iter().for_each(|s| println!("{s}"));
        return Ok(ExitStatus::Success);
    }
    let pending = settings::alter_system(&session, &pairs, !apply.no_reload).await?;
    if !pending.is_empty() {
        note(format!(
            "restart needed for: {} (run `qrd conf set --restart …` on the server's machine)",
            pending.join(", ")
        ));
    }
    Ok(ExitStatus::Success)
}
