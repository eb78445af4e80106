//! `qrd switchover`: arguments, a call into `qrd_replica::switchover`, and its rendering.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use qrd_replica::switchover::{self, SwitchoverRequest};

use crate::error::{CliError, ExitStatus};
use crate::options::{ConnectArgs, ReplicationArgs, ToolArgs};

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The standby that becomes the primary, HOST:PORT (as the old primary will reach it)
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::options::host_port)]
    pub standby: (String, u16),
    /// The primary's data directory, or a Debian cluster's (stopped cleanly through its service, then it follows the new primary)
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub replication: ReplicationArgs,
    /// sslmode of the old primary's replication connection to the new one
    #[arg(long, value_name = "MODE", default_value = "prefer")]
    pub replication_sslmode: String,
    /// Seconds to wait for the standby to catch up and for the promotion
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// The old primary's superuser, for the streaming check through its socket [default: the OS user's name, then postgres]
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

pub async fn execute(a: SwitchoverArgs) -> Result<ExitStatus, CliError> {
    let password = a.replication.password()?;
    let opts = a.conn.opts();
    let (host, port) = a.standby;
    let mut standby_opts = opts.clone();
    standby_opts.host = Some(host.clone());
    standby_opts.port = Some(port);
    let primary = qrd_pg::Session::open(&opts).await?;
    let standby = qrd_pg::Session::open(&standby_opts).await?;
    let req = SwitchoverRequest {
        data_dir: a.data_dir,
        standby_host: host,
        standby_port: port,
        replicator: a.replication.replicator,
        password,
        sslmode: a.replication_sslmode,
        timeout: Duration::from_secs(a.timeout.max(1)),
        superuser: a.superuser,
    };
    let done = switchover::switchover(&primary, &standby, &a.tools.finder(), &req).await?;
    if a.json {
        crate::output::print_json(&done);
        return Ok(ExitStatus::Success);
    }
    println!(
        "{} is the primary (timeline {}); writes were refused for {:.2} s; {} follows it ({}); {:.1} s in all",
        done.new_primary,
        done.timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        done.write_downtime_seconds,
        done.old_primary_dir.display(),
        done.old_primary_streaming,
        done.total_seconds
    );
    println!("Now, on the Qlik side:");
    for (i, step) in qrd_replica::failover::qlik_steps(&done.new_primary).iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
    Ok(ExitStatus::Success)
}
