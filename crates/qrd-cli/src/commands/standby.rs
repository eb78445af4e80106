//! `qrd standby prepare-primary | clone`: arguments, a call into `qrd-replica`, and the rendering of its
//! result. What each step does is documented there.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qrd_replica::clone::{self, CloneRequest};
use qrd_replica::prepare::{self, PrepareRequest};
use qrd_server::LocalServer;

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, DataDirArg, ReplicationArgs, ToolArgs};
use crate::output::note;

#[derive(Debug, Args)]
pub struct StandbyArgs {
    #[command(subcommand)]
    pub command: StandbyCommand,
}

#[derive(Debug, Subcommand)]
pub enum StandbyCommand {
    /// Ready the primary for standbys: WAL settings for its major, the replication role, pg_hba rules, slots
    PreparePrimary(PrepareArgs),
    /// Make a standby's data directory from the primary (pg_basebackup), configured to stream from it
    Clone(CloneArgs),
    /// Replication as the server sees it: standbys, lag and slots on a primary; receiver and lag on a standby
    Status(StatusArgs),
    /// Turn a failed old primary into a standby of the new one (pg_rewind; --reclone when it cannot)
    Rejoin(RejoinArgs),
}

#[derive(Debug, Args)]
pub struct RejoinArgs {
    /// The old primary's data directory (stopped), or a Debian cluster's /etc/postgresql/… directory
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The new primary, HOST:PORT (pg_rewind connects there as -U, a superuser)
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::options::host_port)]
    pub new_primary: (String, u16),
    #[command(flatten)]
    pub replication: ReplicationArgs,
    /// Stream through this physical replication slot on the new primary
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// The name the new primary shows for this standby [default: the data directory's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// sslmode of the standby's replication connection to the new primary
    #[arg(long, value_name = "MODE", default_value = "prefer")]
    pub replication_sslmode: String,
    /// When pg_rewind cannot rewind it, clone it afresh (the old contents are kept aside)
    #[arg(long)]
    pub reclone: bool,
    /// Start it and succeed only once it streams
    #[arg(long)]
    pub start: bool,
    /// Its superuser, for the --start check through its socket [default: the OS user's name, then postgres]
    #[arg(long, value_name = "ROLE")]
    pub superuser: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// A standby's address as the primary sees it, ADDR or ADDR/PREFIX (repeatable)
    #[arg(long = "standby", value_name = "ADDR[/PREFIX]", required = true)]
    pub standbys: Vec<String>,
    #[command(flatten)]
    pub replication: ReplicationArgs,
    /// A physical replication slot to create (repeatable; one per standby)
    #[arg(long = "slot", value_name = "NAME")]
    pub slots: Vec<String>,
    /// Restart the server when a setting needs it (wal_level, max_wal_senders, wal_log_hints …)
    #[arg(long)]
    pub restart: bool,
    /// Print the diffs and statements; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub dir: DataDirArg,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// The primary's host name or address, as the standby reaches it
    #[arg(long, value_name = "HOST")]
    pub primary_host: String,
    /// The primary's port
    #[arg(long, value_name = "PORT", default_value_t = 4432)]
    pub primary_port: u16,
    /// The standby's data directory (empty or missing), or a Debian cluster's (its configuration stays in /etc)
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub replication: ReplicationArgs,
    /// Stream through this physical replication slot (made by prepare-primary --slot)
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// The standby's own port (needed when it runs on the primary's machine) [default: the replaced cluster's, else the primary's]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// The guide's failover trigger: creating this file promotes the standby (PostgreSQL 12–15 only)
    #[arg(long, value_name = "PATH")]
    pub trigger_file: Option<PathBuf>,
    /// The OS user the server runs as [default: the owner of the data directory's parent]
    #[arg(long, value_name = "USER")]
    pub os_user: Option<String>,
    /// The name the primary shows for this standby [default: the data directory's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// sslmode of the standby's connection to the primary
    #[arg(long, value_name = "MODE", default_value = "prefer")]
    pub sslmode: String,
    /// The standby's superuser, for the --start check through its socket [default: the OS user's name, then postgres]
    #[arg(long, value_name = "ROLE")]
    pub superuser: Option<String>,
    /// Clone into a non-empty directory (its contents are kept aside as DIR.qrd-old-<time>, not deleted)
    #[arg(long)]
    pub force: bool,
    /// Start the standby and succeed only once it streams
    #[arg(long)]
    pub start: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
}

pub async fn execute(args: StandbyArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        StandbyCommand::PreparePrimary(a) => prepare_primary(a).await,
        StandbyCommand::Clone(a) => clone_standby(a).await,
        StandbyCommand::Status(a) => status(a).await,
        StandbyCommand::Rejoin(a) => rejoin(a).await,
    }
}

async fn rejoin(a: RejoinArgs) -> Result<ExitStatus, CliError> {
    let password = a.replication.password()?;
    let (host, port) = a.new_primary;
    let mut opts = a.conn.opts();
    opts.host = Some(host.clone());
    opts.port = Some(port);
    let session = qrd_pg::Session::open(&opts).await?;
    let source = session.connector().child("postgres")?;
    let req = qrd_replica::rejoin::RejoinRequest {
        data_dir: a.data_dir,
        new_primary_host: host,
        new_primary_port: port,
        replicator: a.replication.replicator,
        password,
        slot: a.slot,
        name: a.name,
        sslmode: a.replication_sslmode,
        reclone: a.reclone,
        start: a.start,
        superuser: a.superuser,
    };
    let finder = a.tools.finder();
    let done = qrd_replica::rejoin::rejoin(&req, &source, &finder).await?;
    if a.json {
        crate::output::print_json(&done);
        return Ok(ExitStatus::Success);
    }
    if let Some(why) = &done.rewind_failed {
        println!("pg_rewind could not rewind it ({why}); it was cloned afresh");
    }
    println!(
        "{} follows {} ({}, {:.1} s){}",
        done.data_dir.display(),
        done.new_primary,
        done.method,
        done.seconds,
        done.streaming.as_deref().map(|s| format!("; the WAL receiver is {s}")).unwrap_or_default()
    );
    Ok(ExitStatus::Success)
}

async fn status(a: StatusArgs) -> Result<ExitStatus, CliError> {
    use qrd_replica::status::Status;
    let session = qrd_pg::Session::open(&a.conn.opts()).await?;
    let st = qrd_replica::status::status(&session).await?;
    if a.json {
        crate::output::print_json(&st);
        return Ok(ExitStatus::Success);
    }
    let bytes =
        |b: Option<i64>| b.map(|b| qrd_backup::space::human_bytes(b.max(0) as u64)).unwrap_or_else(|| "–".into());
    let secs = |s: Option<f64>| s.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "–".into());
    match st {
        Status::Primary { timeline, standbys, slots } => {
            println!("{}: primary, timeline {}", session.target().address(), timeline.unwrap_or(0));
            if standbys.is_empty() {
                println!("  no standby connected");
            }
            for s in &standbys {
                println!(
                    "  standby {:<16} {:<15} {:<10} {:<6} lag {} / {}",
                    s.name,
                    s.address.as_deref().unwrap_or("(socket)"),
                    s.state,
                    s.sync_state,
                    bytes(s.lag_bytes),
                    secs(s.lag_seconds)
                );
            }
            for s in &slots {
                println!(
                    "  slot {:<19} {} holding {}",
                    s.name,
                    if s.active { "active  " } else { "INACTIVE" },
                    bytes(s.retained_bytes)
                );
            }
        }
        Status::Standby { receiver } => {
            println!(
                "{}: standby of {}, receiver {}, timeline {}, replay behind by {} (last replayed commit {} ago)",
                session.target().address(),
                receiver.sender.as_deref().unwrap_or("?"),
                receiver.status.as_deref().unwrap_or("not running"),
                receiver.timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                bytes(receiver.replay_lag_bytes),
                secs(receiver.replay_age_seconds)
            );
        }
    }
    Ok(ExitStatus::Success)
}

async fn prepare_primary(a: PrepareArgs) -> Result<ExitStatus, CliError> {
    let password =
        qrd_auth::source::replication_password(a.replication.replication_password_file.as_deref(), false, false)?;
    let server = LocalServer::open(&a.conn.opts(), a.dir.data_dir.as_deref()).await?;
    let mut req =
        PrepareRequest { standbys: a.standbys, replicator: a.replication.replicator, password, slots: a.slots };
    let plan = match prepare::plan(&server, &req).await {
        // A role to create needs a password: ask for it where a terminal allows.
        Err(qrd_replica::ReplicaError::PasswordNeeded { .. }) if !a.dry_run => {
            req.password = qrd_auth::source::replication_password(None, true, true)?;
            prepare::plan(&server, &req).await?
        }
        other => other?,
    };
    if a.dry_run {
        if a.json {
            crate::output::print_json(&plan);
        } else {
            for d in plan.diffs() {
                print!("{d}");
            }
            for s in plan.statements() {
                println!("{s}");
            }
        }
        note(if plan.is_empty() { "dry run: nothing to change" } else { "dry run: nothing was changed" });
        return Ok(ExitStatus::Success);
    }
    if plan.is_empty() {
        note("the primary is ready for standbys: nothing to change");
    }
    let finder = a.tools.finder();
    let done = prepare::apply(&server, plan, req.password.as_ref(), a.restart.then_some(&finder)).await?;
    if a.json {
        crate::output::print_json(&done);
        return Ok(ExitStatus::Success);
    }
    for s in &done.plan.settings {
        println!("{:<22} {} → {}{}", s.name, s.from, s.to, if s.restart { " (restart)" } else { "" });
    }
    for r in &done.plan.hba_rules {
        println!("pg_hba.conf: {r}");
    }
    for s in &done.plan.slots {
        println!("slot {s}");
    }
    if !done.restart_pending.is_empty() {
        println!(
            "restart needed for: {} (pass --restart, or restart the PostgreSQL service)",
            done.restart_pending.join(", ")
        );
    }
    Ok(ExitStatus::Success)
}

async fn clone_standby(a: CloneArgs) -> Result<ExitStatus, CliError> {
    let password = a.replication.password()?;
    let req = CloneRequest {
        primary_host: a.primary_host,
        primary_port: a.primary_port,
        data_dir: a.data_dir,
        replicator: a.replication.replicator,
        password,
        slot: a.slot,
        port: a.port,
        trigger_file: a.trigger_file,
        os_user: a.os_user,
        name: a.name,
        force: a.force,
        start: a.start,
        sslmode: a.sslmode,
        superuser: a.superuser,
    };
    let finder = a.tools.finder();
    let done = clone::clone(&req, &finder).await?;
    if a.json {
        crate::output::print_json(&done);
        return Ok(ExitStatus::Success);
    }
    println!(
        "{} cloned from {} (PostgreSQL {}, pg_basebackup {}) in {:.1} s; it streams as {:?}",
        done.data_dir.display(),
        done.primary,
        done.primary_version,
        done.pg_basebackup,
        done.seconds,
        done.application_name
    );
    match &done.streaming {
        Some(status) => println!("started: the WAL receiver is {status}"),
        None => println!(
            "not started: start it with pg_ctl (or its service); `qrd standby clone --start` waits for streaming"
        ),
    }
    Ok(ExitStatus::Success)
}
