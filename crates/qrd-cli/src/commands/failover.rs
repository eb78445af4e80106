//! `qrd failover`: arguments, a call into `qrd_replica::failover`, and its rendering.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use qrd_replica::failover::{self, FailoverRequest, Method};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ToolArgs};

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The old primary, HOST:PORT: when it still accepts writes, qrd refuses (two primaries lose data)
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::options::host_port)]
    pub old_primary: Option<(String, u16)>,
    /// Promote even though the old primary still accepts writes (fence it yourself)
    #[arg(long, requires = "old_primary")]
    pub force: bool,
    /// Promote through this cluster's service (pg_ctlcluster, else pg_ctl promote) instead of pg_promote()
    /// over the connection: the data directory of the server connected to (or its /etc/postgresql/… directory)
    #[arg(long, value_name = "DIR", conflicts_with = "via_trigger_file")]
    pub data_dir: Option<PathBuf>,
    /// The guide's way: create the standby's promote_trigger_file (PostgreSQL 12–15)
    #[arg(long, value_name = "PATH")]
    pub via_trigger_file: Option<PathBuf>,
    /// Seconds to wait until the promoted server accepts writes
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
}

pub async fn execute(a: FailoverArgs) -> Result<ExitStatus, CliError> {
    let opts = a.conn.opts();
    let old_primary = a.old_primary.map(|(host, port)| {
        let mut o = opts.clone();
        o.host = Some(host);
        o.port = Some(port);
        o.connect_timeout = Duration::from_secs(3);
        o.prompt = false;
        o
    });
    let method = match (a.data_dir, a.via_trigger_file) {
        (Some(dir), _) => Method::DataDir(dir),
        (None, Some(path)) => Method::TriggerFile(path),
        (None, None) => Method::Connection,
    };
    let req = FailoverRequest { method, old_primary, force: a.force, timeout: Duration::from_secs(a.timeout.max(1)) };
    let session = qrd_pg::Session::open(&opts).await?;
    let done = failover::failover(&session, &a.tools.finder(), &req).await?;
    if a.json {
        crate::output::print_json(&done);
        return Ok(ExitStatus::Success);
    }
    if let Some(old) = &done.old_primary {
        println!("old primary: {old}");
    }
    println!(
        "{} promoted ({}) and accepting writes after {:.2} s, timeline {}",
        done.promoted,
        done.method,
        done.seconds,
        done.timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
    );
    println!("Now, on the Qlik side:");
    for (i, step) in done.qlik_steps.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
    Ok(ExitStatus::Success)
}
