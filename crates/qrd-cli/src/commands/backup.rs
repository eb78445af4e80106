//! `qrd backup --out DIR | verify | list | prune`: arguments, calls into `qrd-backup`, and the rendering of
//! their results. What a bundle holds and how it is written is documented there.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use qrd_backup::backup::{self, Request};
use qrd_backup::bundle::WriterOptions;
use qrd_backup::hook::Hook;
use qrd_backup::manifest::ArchiveFormat;
use qrd_backup::retention::{self, KeepReason, Policy};
use qrd_backup::space::human_bytes;
use qrd_pg::Session;

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ToolArgs};
use crate::output::note;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check a bundle: every member's checksum, and every archive read by pg_restore --list
    Verify(VerifyArgs),
    /// The bundles in a directory, oldest first
    List(ListArgs),
    /// Delete old bundles: keep the newest N, one per day for D days, one per week for W weeks (bundles that
    /// could not be checked are kept, and the prune exits 5)
    Prune(PruneArgs),
}

/// `qrd backup --out DIR`: one bundle of the roles and every Qlik database.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The directory the bundle goes in (NAME.tar.zst, mode 0600)
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// The bundle's name [default: qrd-backup-<UTC time>]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Also back up this database (repeatable; QLogs is taken when present)
    #[arg(long = "database", value_name = "NAME")]
    pub databases: Vec<String>,
    /// Archive format: directory (parallel dump and restore) or tar (the guide's pg_dump -F t)
    #[arg(long, value_name = "FORMAT", default_value = "directory", value_parser = parse_format)]
    pub format: ArchiveFormat,
    #[command(flatten)]
    pub jobs: crate::options::JobsArgs,
    /// zstd compression level (1 is the fastest, and on pg_dump's output measured smaller than 3)
    #[arg(long, value_name = "LEVEL", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// A command run before the first dump, e.g. to stop the Qlik services (a failure aborts)
    #[arg(long, value_name = "CMD")]
    pub before: Option<String>,
    /// A command run after the last dump, whatever happened, e.g. to start the Qlik services
    #[arg(long, value_name = "CMD")]
    pub after: Option<String>,
    /// Seconds a hook may run before it is killed
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub hook_timeout: u64,
    /// Back up a data directory whose server no longer runs (the guide's "after uninstalling Qlik Sense"):
    /// qrd copies it beside itself, starts a private server on the copy, and removes both afterwards (with
    /// --dry-run too: the copy's server lists the databases); -U names the bootstrap superuser
    #[arg(long, value_name = "DIR")]
    pub from_data_dir: Option<PathBuf>,
    /// Say what would be dumped and how much disk it needs; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (NAME.tar.zst)
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("keep").required(true).multiple(true).args(["keep_last", "keep_daily", "keep_weekly"])))]
pub struct PruneArgs {
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Keep the newest N bundles
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: usize,
    /// Keep the newest bundle of each of the last D days (UTC)
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest bundle of each of the last W ISO weeks (UTC)
    #[arg(long, value_name = "W", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Show what would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON (what each verification said, the plan, what was deleted)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tools: ToolArgs,
}

fn parse_format(s: &str) -> Result<ArchiveFormat, String> {
    match s {
        "directory" | "d" => Ok(ArchiveFormat::Directory),
        "tar" | "t" => Ok(ArchiveFormat::Tar),
        _ => Err(format!("{s:?}: use directory or tar")),
    }
}

pub async fn execute(args: BackupArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        Some(BackupCommand::Verify(a)) => verify(a).await,
        Some(BackupCommand::List(a)) => list(a),
        Some(BackupCommand::Prune(a)) => prune(a).await,
        None => run(args.run).await,
    }
}

async fn run(a: RunArgs) -> Result<ExitStatus, CliError> {
    let jobs = a.jobs.get();
    let timeout = Duration::from_secs(a.hook_timeout);
    let req = Request {
        dir: a.out.clone().expect("clap requires --out"),
        name: a.name,
        extra_databases: a.databases,
        format: a.format,
        jobs,
        compression: WriterOptions { level: a.level, threads: jobs },
        before: a.before.map(|command| Hook { command, timeout }),
        after: a.after.map(|command| Hook { command, timeout }),
        from_data_dir: a.from_data_dir.clone(),
    };
    // With --from-data-dir, a private server on a copy of it (stopped and removed when `_copy` goes).
    let (session, _copy) = match &a.from_data_dir {
        Some(dir) => {
            let copy = qrd_backup::offline::start_copy(dir, &a.tools.finder()).await?;
            let user = a.conn.username.clone().unwrap_or_else(|| "postgres".to_owned());
            (Session::open(&copy.connect_opts(&user)).await?, Some(copy))
        }
        None => (Session::open(&a.conn.opts()).await?, None),
    };
    let plan = backup::plan(&session, &a.tools.finder(), &req).await?;
    if a.dry_run {
        if a.json {
            crate::output::print_json(&plan);
        } else {
            println!("would back up PostgreSQL {} into {}", plan.server_version, plan.dir.join(&plan.name).display());
            for d in &plan.databases {
                println!("  {:<16} {:>10}  owner {}", d.name, human_bytes(d.bytes), d.owner);
            }
            println!(
                "staging the dumps needs up to {} in {} ({} free); tools: {}",
                human_bytes(plan.staging_bytes),
                plan.dir.display(),
                human_bytes(plan.free_bytes),
                plan.pg_dump.display()
            );
            if plan.no_role_passwords {
                println!("{NO_ROLE_PASSWORDS}");
            }
        }
        return Ok(ExitStatus::Success);
    }
    let report = backup::run(&session, plan, &req, &crate::output::progress()).await?;
    if a.json {
        crate::output::print_json(&report);
    } else {
        println!(
            "backup complete: {} ({}, {} databases, {:.1} s)",
            report.bundle.display(),
            human_bytes(report.bytes),
            report.databases.len(),
            report.seconds
        );
        if report.no_role_passwords {
            println!("{NO_ROLE_PASSWORDS}");
        }
    }
    Ok(ExitStatus::Success)
}

/// Said when the roles go into the bundle without their passwords.
const NO_ROLE_PASSWORDS: &str = "roles without their passwords: this role may not read pg_authid (it is no \
                                 superuser); a restore that creates the repository role asks for its password";

async fn verify(a: VerifyArgs) -> Result<ExitStatus, CliError> {
    let report = qrd_backup::verify::verify(&a.bundle, &a.tools.finder()).await?;
    if a.json {
        crate::output::print_json(&report);
    } else {
        let dbs: Vec<String> =
            report.databases.iter().map(|d| format!("{} ({} entries)", d.database, d.entries)).collect();
        println!(
            "verified: {} — {} files, {} checked; archives read by pg_restore: {}",
            report.bundle.display(),
            report.files,
            human_bytes(report.content_bytes),
            dbs.join(", ")
        );
    }
    Ok(ExitStatus::Success)
}

fn list(a: ListArgs) -> Result<ExitStatus, CliError> {
    let listing = retention::list(&a.dir)?;
    if a.json {
        crate::output::print_json(&listing);
        return Ok(ExitStatus::Success);
    }
    for b in &listing.bundles {
        let created = b.summary.created_utc.replace_nanosecond(0).unwrap_or(b.summary.created_utc);
        println!(
            "{}  {:>10}  {}  {}:{}  {}",
            b.file_name,
            human_bytes(b.bytes),
            created.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            b.summary.host,
            b.summary.port,
            b.summary.databases.join(",")
        );
    }
    for u in &listing.unreadable {
        tracing::warn!("{}: not a readable bundle ({})", u.path.display(), u.reason);
    }
    for p in &listing.partials {
        note(format!("{}: an unfinished bundle (a backup running, or one that crashed)", p.display()));
    }
    Ok(ExitStatus::Success)
}

async fn prune(a: PruneArgs) -> Result<ExitStatus, CliError> {
    let _lock = qrd_backup::lock::DirLock::acquire(&a.dir)?;
    let policy = Policy { keep_last: a.keep_last, keep_daily: a.keep_daily, keep_weekly: a.keep_weekly };
    let mut prune = retention::plan(&a.dir, &a.tools.finder(), policy, time::OffsetDateTime::now_utc()).await?;
    if !a.dry_run {
        prune.apply()?;
    }
    if a.json {
        crate::output::print_json(&prune);
    } else {
        for k in &prune.plan.keep {
            let unchecked = k.reasons.contains(&KeepReason::NotChecked);
            println!("keep    {}{}", k.file_name, if unchecked { " (could not be checked)" } else { "" });
        }
        for d in &prune.plan.delete {
            let verb = if a.dry_run { "would delete" } else { "deleted" };
            println!("{verb} {} ({})", d.file_name, d.reason.describe());
        }
    }
    prune.finish()?;
    Ok(ExitStatus::Success)
}
