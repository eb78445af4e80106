//! `qrd check`: one line per check, `--json` for machines; exit 1 when anything fails (a check skipped for
//! lack of rights does not).

use clap::Args;
use qrd_check::{Context, Report, ServerSummary, Site, ToolsFound};
use qrd_exit::UserError;
use qrd_pg::inventory::Inventory;
use qrd_pg::spec::{DEFAULT_REPO_ROLE, SUPPORTED_MAJORS};
use qrd_pg::{RepoSpec, Session};
use qrd_pgbin::Tool;

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ToolArgs};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Name of the repository login role
    #[arg(long, value_name = "ROLE", default_value = DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Print the report as JSON (schema in the README)
    #[arg(long)]
    pub json: bool,
    /// A Qlik node's address or subnet (ADDR or ADDR/PREFIX): check that pg_hba.conf lets it reach every
    /// Qlik database as the repository role (repeat for each node)
    #[arg(long = "node", value_name = "ADDR")]
    pub nodes: Vec<String>,
    /// The nodes connect through a proxy at ADDR (HAProxy in front of a `qrd ha` cluster): pg_hba sees
    /// that address, so it is the one checked for each --node
    #[arg(long, value_name = "ADDR", requires = "nodes")]
    pub via: Option<String>,
    /// How many Qlik nodes use this repository: compare max_connections with the guide's value
    #[arg(long = "nodes", value_name = "N")]
    pub node_count: Option<u32>,
    /// A backup directory: its newest bundle must verify and be younger than 26 hours (fails past 50)
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<std::path::PathBuf>,
    /// Each node's repository connection pool size
    #[arg(long, value_name = "SIZE", default_value_t = qrd_check::DEFAULT_POOL_SIZE)]
    pub pool_size: u32,
    // Flattened groups last: their help headings would otherwise capture the options above.
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// The tools backups will need; checked now so a nightly job does not discover their absence.
const BACKUP_TOOLS: [Tool; 2] = [Tool::PgDump, Tool::PgRestore];

pub async fn execute(args: CheckArgs) -> Result<ExitStatus, CliError> {
    let spec = RepoSpec::new(&args.repo_user);
    let session = Session::open(&args.conn.opts()).await?;
    let inv = Inventory::gather(&session, &spec).await?;

    let finder = args.tools.finder();
    let tools = ToolsFound { results: BACKUP_TOOLS.iter().map(|t| finder.find(*t, &inv.version)).collect() };
    let backups = match &args.backup_dir {
        Some(dir) => Some(backups(dir, &finder).await),
        None => None,
    };
    let replication = match qrd_replica::status::status(&session).await {
        Ok(st) => Some(st),
        Err(e) => {
            tracing::debug!("replication status not read: {e}");
            None
        }
    };
    let site = Site {
        nodes: args.nodes.clone(),
        via: args.via.clone(),
        node_count: args.node_count,
        pool_size: args.pool_size,
        backups,
        replication,
    };
    let findings = qrd_check::run_all(&Context { inventory: &inv, spec: &spec, tools: &tools, site: &site });
    let target = session.target();
    let report = Report::new(
        ServerSummary {
            address: target.address(),
            user: target.user.clone(),
            version: inv.version.text.clone(),
            major: inv.version.major,
            supported: SUPPORTED_MAJORS.contains(&inv.version.major),
        },
        findings,
    );

    if args.json {
        crate::output::print_json(&report);
    } else {
        print_human(&report, &spec, &inv);
    }
    Ok(if report.passed() { ExitStatus::Success } else { ExitStatus::ChecksFailed })
}

fn print_human(report: &Report, spec: &RepoSpec, inv: &Inventory) {
    println!(
        "qrd check: PostgreSQL {} at {} as {:?}, repository role {:?}",
        inv.version, report.server.address, report.server.user, spec.role
    );
    crate::output::print_findings(&report.checks);
    let s = report.summary;
    let skip = if s.skip > 0 { format!(", {} skip (not readable with these rights)", s.skip) } else { String::new() };
    println!("{} ok, {} warn, {} fail{skip}", s.ok, s.warn, s.fail);
}

/// The backup directory's state for the `backup.newest` check.
async fn backups(dir: &std::path::Path, finder: &qrd_pgbin::Finder) -> qrd_check::Backups {
    let shown = dir.display().to_string();
    match qrd_backup::status::status(dir, finder).await {
        Ok(st) => qrd_check::Backups {
            dir: shown,
            unreadable: None,
            bundles: st.listing.bundles.len(),
            newest_verified: st.newest_verified().map(|c| {
                let hours = (time::OffsetDateTime::now_utc() - c.created_utc).as_seconds_f64() / 3600.0;
                (c.file_name.clone(), hours.max(0.0))
            }),
            damaged: st.damaged().map(|c| c.file_name.clone()).collect(),
            not_checked: st
                .not_checked()
                .filter_map(|c| {
                    let e = c.verdict.error()?;
                    Some(qrd_check::NotChecked {
                        file: c.file_name.clone(),
                        reason: e.to_string(),
                        hint: e.hint().unwrap_or_default(),
                    })
                })
                .collect(),
        },
        Err(e) => qrd_check::Backups {
            dir: shown,
            unreadable: Some(e.to_string()),
            bundles: 0,
            newest_verified: None,
            damaged: Vec::new(),
            not_checked: Vec::new(),
        },
    }
}
