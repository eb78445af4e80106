//! `qrd restore BUNDLE`: arguments, a call into `qrd_backup::restore`, and its rendering.

use std::path::PathBuf;

use clap::Args;
use qrd_backup::restore::{self, Request};
use qrd_pg::Session;

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ToolArgs};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The bundle (NAME.tar.zst) made by `qrd backup`
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Restore only this database (repeatable) [default: every database of the bundle]
    #[arg(long = "database", value_name = "NAME")]
    pub databases: Vec<String>,
    /// Parallel pg_restore workers [default: the machine's cores]
    #[arg(long, value_name = "N")]
    pub jobs: Option<u32>,
    /// The repository role whose provisioning is checked afterwards
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

pub async fn execute(a: RestoreArgs) -> Result<ExitStatus, CliError> {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let req = Request {
        bundle: a.bundle,
        databases: a.databases,
        jobs: a.jobs.unwrap_or(cores).max(1),
        repo_role: a.repo_user,
    };
    let session = Session::open(&a.conn.opts()).await?;
    let report = restore::restore(&session, &a.tools.finder(), &req).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("serialisable"));
        return Ok(ExitStatus::Success);
    }
    for d in &report.databases {
        let how = if d.created { "created and restored" } else { "restored into the empty database" };
        println!(
            "{:<16} {how}: {} tables, {} rows as the manifest counted ({:.1} s)",
            d.name, d.tables, d.rows, d.seconds
        );
    }
    if !report.roles_created.is_empty() {
        println!("roles created from the bundle: {}", report.roles_created.join(", "));
    }
    for p in &report.provisioning_differs {
        println!("differs from the guide: {p} (run `qrd provision`)");
    }
    println!("restore complete: {} ({:.1} s)", report.bundle.display(), report.seconds);
    Ok(ExitStatus::Success)
}
