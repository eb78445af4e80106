//! `qrd ha init | status | switchover | adopt | set-param | check`: arguments, a call into `qrd-ha`, and
//! the rendering of its result. What each does is documented there; `init`, which describes a whole
//! cluster, has a file of its own.

mod init;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use qrd_ha::status::ClusterRef;

use crate::error::{CliError, ExitStatus};
use crate::options::ConnectArgs;
use crate::output::note;

#[derive(Debug, Args)]
pub struct HaArgs {
    #[command(subcommand)]
    pub command: HaCommand,
}

#[derive(Debug, Subcommand)]
pub enum HaCommand {
    /// Write a Patroni + etcd + HAProxy cluster for the Qlik repository: every member's patroni.yml, credentials and bootstrap SQL, etcd's and HAProxy's settings
    Init(Box<init::InitArgs>),
    /// The cluster as Patroni's REST API, etcd and HAProxy report it: leader, replicas, lag, timeline, pending restarts
    Status(StatusArgs),
    /// Move the leader to another member (Patroni's switchover), and wait until it takes writes
    Switchover(SwitchoverArgs),
    /// Move an existing repository (a qrd backup bundle, or a standalone server) into the cluster's leader; wait until every replica has it
    Adopt(Box<AdoptArgs>),
    /// Change settings every member shares (in Patroni's DCS), then restart the members that need it: replicas first, the leader last
    SetParam(SetParamArgs),
    /// Check the cluster: one leader, replicas streaming, one timeline, the same settings everywhere, etcd quorum, HAProxy to the leader only
    Check(CheckArgs),
}

/// How to reach the cluster.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// A member's patroni.yml (as qrd ha init wrote it): its REST API, the etcd hosts and the endpoint
    #[arg(long, value_name = "FILE", default_value = "/etc/patroni/15-qlik-repository.yml")]
    pub config: PathBuf,
    /// The env file with PATRONI_RESTAPI_PASSWORD [default: beside --config; or QRD_PATRONI_API_PASSWORD]
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// A member's REST API instead of the one --config names (repeatable)
    #[arg(long = "api", value_name = "URL")]
    pub api: Vec<String>,
    /// The CA that signed the REST API's certificate [default: restapi.cafile of --config]
    #[arg(long, value_name = "FILE")]
    pub api_ca: Option<PathBuf>,
    /// HAProxy's statistics page [default: the one qrd ha init wrote into --config]
    #[arg(long, value_name = "URL")]
    pub haproxy_stats: Option<String>,
}

impl ClusterArgs {
    fn cluster_ref(&self) -> Result<ClusterRef, CliError> {
        let (env, stats, ca) = (self.env_file.as_deref(), self.haproxy_stats.as_deref(), self.api_ca.as_deref());
        Ok(ClusterRef::resolve(&self.config, env, &self.api, stats, ca)?)
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The member to lead [default: the running replica least behind]
    #[arg(long, value_name = "MEMBER")]
    pub to: Option<String>,
    /// Give up waiting after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The bundle to adopt (made by qrd backup)
    #[arg(long, value_name = "FILE", required_unless_present = "from_host", conflicts_with = "from_host")]
    pub bundle: Option<PathBuf>,
    /// A standalone server to adopt: it is backed up first (into --work-dir), then restored
    #[arg(long, value_name = "HOST")]
    pub from_host: Option<String>,
    #[arg(long, value_name = "PORT", default_value_t = 4432)]
    pub from_port: u16,
    /// The standalone server's superuser password [default: as for the cluster's connection]
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Where the standalone server's bundle is written (and kept)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub work_dir: PathBuf,
    /// The Qlik central node's new host name, when the site moves to new machines (as qrd restore)
    #[arg(long, value_name = "HOST")]
    pub new_hostname: Option<String>,
    /// Replace Qlik databases the cluster already holds data in (as qrd restore --clean)
    #[arg(long)]
    pub clean: bool,
    /// With --clean: end other sessions of the replaced databases
    #[arg(long, requires = "clean")]
    pub yes: bool,
    #[command(flatten)]
    pub jobs: crate::options::JobsArgs,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Give up waiting for the replicas after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub wait: u64,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The cluster's connection (-h/-p default to the endpoint qrd ha init wrote into --config)
    #[command(flatten)]
    pub conn: ConnectArgs,
    #[command(flatten)]
    pub tools: crate::options::ToolArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SetParamArgs {
    /// NAME=VALUE: a PostgreSQL setting (max_connections=220) or one of Patroni's (ttl, loop_wait,
    /// retry_timeout, maximum_lag_on_failover, failsafe_mode)
    #[arg(value_name = "NAME=VALUE", required = true)]
    pub pairs: Vec<String>,
    /// Change the DCS only; leave the restarts to the DBA (qrd ha status shows them pending)
    #[arg(long)]
    pub no_restart: bool,
    /// Give up waiting for one member's restart after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,
    /// Show the changes; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also compare each member's own settings (pg_hba, TLS, SCRAM, max_connections) over a connection to it
    #[arg(long)]
    pub members: bool,
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(args: HaArgs) -> Result<ExitStatus, CliError> {
    match args.command {
        HaCommand::Init(a) => init::execute(*a),
        HaCommand::Status(a) => status(a).await,
        HaCommand::Switchover(a) => switchover(a).await,
        HaCommand::Check(a) => check(a).await,
        HaCommand::SetParam(a) => set_param(a).await,
        HaCommand::Adopt(a) => adopt(*a).await,
    }
}

async fn adopt(a: AdoptArgs) -> Result<ExitStatus, CliError> {
    use qrd_ha::adopt::{AdoptRequest, Source};
    let cref = a.cluster.cluster_ref()?;
    let mut opts = a.conn.opts();
    if a.conn.host.is_none() {
        let (h, p) = cref.endpoint_host_port().ok_or_else(|| {
            qrd_ha::HaError::Usage("no endpoint known: pass -h and -p (HAProxy's or the leader's)".into())
        })?;
        (opts.host, opts.port) = (Some(h), Some(p));
    }
    let target = qrd_pg::Session::open(&opts).await?;
    let source_session = match &a.from_host {
        Some(h) => {
            let mut s = a.conn.opts();
            s.host = Some(h.clone());
            s.port = Some(a.from_port);
            if a.from_password_file.is_some() {
                s.password_file = a.from_password_file.clone();
            }
            Some(qrd_pg::Session::open(&s).await?)
        }
        None => None,
    };
    let source = match (&a.bundle, &source_session) {
        (Some(b), _) => Source::Bundle(b.clone()),
        (None, Some(session)) => Source::Server { session, dir: a.work_dir.clone() },
        (None, None) => unreachable!("clap requires --bundle or --from-host"),
    };
    let req = AdoptRequest {
        jobs: a.jobs.get(),
        repo_role: a.repo_user,
        rename: a.new_hostname.map(|new_host| qrd_backup::hostname::Rename { new_host, ..Default::default() }),
        clean: a.clean.then_some(qrd_backup::restore::Clean { drop_old: false, terminate_sessions: a.yes }),
        wait: Duration::from_secs(a.wait),
    };
    let report =
        qrd_ha::adopt::adopt(&cref, &target, &a.tools.finder(), source, &req, &crate::output::progress()).await?;
    if a.json {
        crate::output::print_json(&report);
        return Ok(ExitStatus::Success);
    }
    if let Some(s) = report.backup_seconds {
        println!("backed up the standalone server into {} ({s:.1} s)", report.bundle.display());
    }
    for d in &report.restore.databases {
        println!("{:<16} {} tables, {} rows as the manifest counted ({:.1} s)", d.name, d.tables, d.rows, d.seconds);
    }
    for p in &report.restore.provisioning_differs {
        println!("differs from the guide: {p} (run `qrd provision` against the endpoint)");
    }
    for r in &report.replicas {
        println!("{} has replayed all of it ({:.1} s after the restore)", r.member, r.seconds);
    }
    println!("adopted into {} (leader): {:.1} s", report.leader, report.restore.seconds);
    Ok(ExitStatus::Success)
}

async fn set_param(a: SetParamArgs) -> Result<ExitStatus, CliError> {
    let cref = a.cluster.cluster_ref()?;
    let (pairs, dry_run, restart, wait) = (a.pairs.clone(), a.dry_run, !a.no_restart, Duration::from_secs(a.wait));
    // Patroni's REST client (ureq) blocks: on a thread of its own; its waits end on Ctrl-C by themselves.
    let report =
        tokio::task::spawn_blocking(move || qrd_ha::setparam::set_param(&cref, &pairs, dry_run, restart, wait))
            .await
            .expect("no panic")?;
    if a.json {
        crate::output::print_json(&report);
        return Ok(ExitStatus::Success);
    }
    if report.changes.is_empty() {
        note("every value is set already: nothing to change");
    }
    for c in &report.changes {
        let from = c.from.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "(default)".into());
        println!("{:<24} {} → {}", c.name, from.trim_matches('"'), c.to.to_string().trim_matches('"'));
    }
    if a.dry_run {
        note("dry run: nothing was changed");
        return Ok(ExitStatus::Success);
    }
    for r in &report.restarts {
        println!("restarted {} ({}) in {:.1} s", r.member, r.role, r.seconds);
    }
    if !report.pending.is_empty() {
        println!(
            "restart pending on {} (qrd ha set-param without --no-restart restarts them in a safe order)",
            report.pending.join(", ")
        );
    }
    Ok(ExitStatus::Success)
}

async fn status(a: StatusArgs) -> Result<ExitStatus, CliError> {
    let cref = a.cluster.cluster_ref()?;
    // Patroni's REST client (ureq) blocks: on a thread of its own.
    let st = tokio::task::spawn_blocking(move || qrd_ha::status::status(&cref)).await.expect("no panic")?;
    if a.json {
        crate::output::print_json(&st);
        return Ok(ExitStatus::Success);
    }
    println!(
        "cluster {}: leader {}, failsafe_mode {}, ttl {} s",
        st.scope.as_deref().unwrap_or("?"),
        st.leader.as_deref().unwrap_or("NONE"),
        if st.failsafe_mode { "on" } else { "off" },
        st.ttl.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
    );
    for m in &st.members {
        println!(
            "  {:<12} {:<8} {:<10} {:<22} timeline {:<3} lag {}{}",
            m.name,
            m.role,
            m.state,
            format!("{}:{}", m.host.as_deref().unwrap_or("?"), m.port.unwrap_or(0)),
            m.timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            m.lag_bytes.map(|b| format!("{b} B")).unwrap_or_else(|| "–".into()),
            if m.pending_restart { "  (restart pending)" } else { "" }
        );
    }
    for m in &st.missing {
        let haproxy = m.haproxy.as_deref().map(|h| format!("HAProxy: {h}")).unwrap_or("not in HAProxy".into());
        println!("  {:<12} MISSING  not in Patroni's cluster (its lease ran out; {haproxy})", m.name);
    }
    for e in &st.etcd {
        println!("  etcd {:<30} {}", e.url, if e.healthy { "healthy" } else { "UNHEALTHY" });
    }
    match &st.haproxy {
        Some(Ok(b)) => {
            for b in b {
                println!("  haproxy {:<12} {}", b.server, b.status);
            }
        }
        Some(Err(e)) => println!("  haproxy: {e}"),
        None => {}
    }
    if let Some(ep) = &st.endpoint {
        println!("the Qlik nodes connect to {ep}");
    }
    Ok(ExitStatus::Success)
}

async fn switchover(a: SwitchoverArgs) -> Result<ExitStatus, CliError> {
    let cref = a.cluster.cluster_ref()?;
    let to = a.to.clone();
    let wait = Duration::from_secs(a.wait);
    // Patroni's REST client (ureq) blocks: on a thread of its own; its waits end on Ctrl-C by themselves.
    let r = tokio::task::spawn_blocking(move || qrd_ha::switchover::switchover(&cref, to.as_deref(), wait))
        .await
        .expect("no panic")?;
    if a.json {
        crate::output::print_json(&r);
        return Ok(ExitStatus::Success);
    }
    if r.from == r.to {
        println!("{}", r.patroni_said);
        return Ok(ExitStatus::Success);
    }
    println!(
        "{} leads instead of {} (timeline {} → {}): writable after {:.2} s",
        r.to,
        r.from,
        r.timeline_before.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        r.timeline_after.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
        r.seconds_to_writable
    );
    if let Some(s) = r.seconds_to_haproxy {
        println!("HAProxy sends to {} only after {s:.2} s", r.to);
    }
    match r.seconds_to_rejoined {
        Some(s) => println!("{} runs as a replica again after {s:.2} s", r.from),
        None => println!("{} has not rejoined as a replica yet: qrd ha status", r.from),
    }
    Ok(ExitStatus::Success)
}

async fn check(a: CheckArgs) -> Result<ExitStatus, CliError> {
    let cref = a.cluster.cluster_ref()?;
    // Patroni's REST client (ureq) blocks: on a thread of its own.
    let st = tokio::task::spawn_blocking(move || qrd_ha::status::status(&cref)).await.expect("no panic")?;
    let mut findings = qrd_ha::check::cluster_findings(&st);
    if a.members {
        let members: Vec<(String, String, u16)> =
            st.members.iter().filter_map(|m| Some((m.name.clone(), m.host.clone()?, m.port?))).collect();
        let got = qrd_ha::check::member_settings(&members, &a.conn.opts()).await;
        findings.extend(qrd_ha::check::settings_findings(&got));
    }
    let failed = findings.iter().any(|f| f.status == qrd_check::Status::Fail);
    if a.json {
        crate::output::print_json(&findings);
    } else {
        crate::output::print_findings(&findings);
    }
    Ok(if failed { ExitStatus::ChecksFailed } else { ExitStatus::Success })
}
