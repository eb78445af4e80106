//! `qrd drill [BUNDLE|DIR]`: arguments, a call into `qrd_backup::drill`, and its rendering.

use std::path::PathBuf;

use clap::Args;
use qrd_pg::Session;

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ToolArgs};

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// A bundle, or a backup directory (its newest bundle)
    #[arg(value_name = "BUNDLE|DIR")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub jobs: crate::options::JobsArgs,
    /// Print the result as JSON (for monitoring)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

pub async fn execute(a: DrillArgs) -> Result<ExitStatus, CliError> {
    let bundle = qrd_backup::drill::choose_bundle(&a.bundle)?;
    let session = Session::open(&a.conn.opts()).await?;
    let d = qrd_backup::drill::drill(&session, &a.tools.finder(), &bundle, a.jobs.get(), &crate::output::progress())
        .await?;
    if a.json {
        crate::output::print_json(&d);
        return Ok(ExitStatus::Success);
    }
    for db in &d.databases {
        println!(
            "{:<16} {} tables, {} rows as the manifest counted ({:.1} s)",
            db.name, db.tables, db.rows, db.restore_seconds
        );
    }
    println!(
        "drill passed: {} restores in {:.1} s (RTO); it is {:.1} hours old (RPO); the scratch databases are dropped",
        d.bundle.display(),
        d.rto_seconds,
        d.rpo_seconds as f64 / 3600.0
    );
    Ok(ExitStatus::Success)
}
