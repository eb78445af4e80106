//! `qrd ha init | status | switchover | check`: arguments, a call into `qrd-ha`, and the rendering of its
//! result. What each does is documented there.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use qrd_auth::source;
use qrd_ha::envfile::GivenSecrets;
use qrd_ha::init::{Action, Destination, InitRequest};
use qrd_ha::spec::{self, ClusterSpec, EtcdMember, Member, Timing, Tls, Vip};
use qrd_ha::status::ClusterRef;
use qrd_pg::password;

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
    Init(Box<InitArgs>),
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
    /// HAProxy's statistics page [default: the one qrd ha init wrote into --config]
    #[arg(long, value_name = "URL")]
    pub haproxy_stats: Option<String>,
}

impl ClusterArgs {
    fn cluster_ref(&self) -> Result<ClusterRef, CliError> {
        let mut cref = match ClusterRef::from_config(&self.config, self.env_file.as_deref()) {
            Ok(c) => c,
            Err(e) if !self.api.is_empty() => {
                tracing::debug!("{e}; using --api");
                ClusterRef::default()
            }
            Err(e) => return Err(e.into()),
        };
        if !self.api.is_empty() {
            cref.api_urls = self.api.clone();
        }
        if let Some(s) = &self.haproxy_stats {
            cref.haproxy_stats = Some(s.clone());
        }
        if let Some(pw) = password::from_env(source::PATRONI_API_PASSWORD_ENV)
            .map_err(|e| CliError::new(ExitStatus::Usage, e.to_string()))?
        {
            cref.api_password = Some(pw);
        }
        Ok(cref)
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// A member, NAME=HOST: Patroni's name for it and the address the others reach it at (repeatable)
    #[arg(long = "member", value_name = "NAME=HOST", required = true, value_parser = spec::parse_named)]
    pub members: Vec<(String, String)>,
    /// An etcd member, NAME=HOST (repeatable; three on three machines for production)
    #[arg(long = "etcd", value_name = "NAME=HOST", required = true, value_parser = spec::parse_named)]
    pub etcd: Vec<(String, String)>,
    /// etcd's client port (the peer port is the next one)
    #[arg(long, value_name = "PORT", default_value_t = 2379)]
    pub etcd_port: u16,
    /// What the Qlik nodes connect to: HAProxy's HOST[:PORT]
    #[arg(long, value_name = "HOST[:PORT]")]
    pub endpoint: String,
    /// The address HAProxy connects to the members from (admitted by pg_hba) [default: the endpoint's host]
    #[arg(long, value_name = "ADDR")]
    pub haproxy_source: Option<std::net::IpAddr>,
    /// A Qlik node's address, ADDR or ADDR/PREFIX (repeatable): the repository role is admitted from it
    #[arg(long = "node", value_name = "ADDR[/PREFIX]")]
    pub nodes: Vec<String>,
    /// How many Qlik nodes use the repository, for max_connections (110 each) [default: the --node count]
    #[arg(long, value_name = "N")]
    pub node_count: Option<u32>,
    /// PostgreSQL major version on the members
    #[arg(long, value_name = "N")]
    pub major: u32,
    /// The members' PostgreSQL programs [default: /usr/lib/postgresql/<major>/bin]
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The cluster's name (Patroni's scope)
    #[arg(long, value_name = "NAME", default_value = spec::DEFAULT_SCOPE)]
    pub scope: String,
    /// Lab layout: every member's files under DIR/<member>/ (several members on one machine)
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// The members' certificate (PEM; it must name every member and the endpoint)
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with_all = ["tls_generate", "no_tls"])]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA that signed it, copied beside it for the nodes to verify with
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Make a lab CA and a certificate naming every member and the endpoint
    #[arg(long, conflicts_with = "no_tls")]
    pub tls_generate: bool,
    /// No TLS (the Qlik nodes' password would cross the network in the clear)
    #[arg(long)]
    pub no_tls: bool,
    /// A virtual IP that follows the leader (vip-manager), ADDR/PREFIX
    #[arg(long, value_name = "ADDR/PREFIX", requires = "vip_interface")]
    pub vip: Option<String>,
    /// The network interface for --vip
    #[arg(long, value_name = "IF")]
    pub vip_interface: Option<String>,
    /// Leader lease, seconds: a crashed leader is replaced after at most this long
    #[arg(long, default_value_t = 30)]
    pub ttl: u32,
    #[arg(long, default_value_t = 10)]
    pub loop_wait: u32,
    #[arg(long, default_value_t = 10)]
    pub retry_timeout: u32,
    /// The repository role
    #[arg(long, value_name = "ROLE", default_value = qrd_pg::spec::DEFAULT_REPO_ROLE)]
    pub repo_user: String,
    /// Read the repository role's password from FILE (else QRD_REPO_PASSWORD, else a prompt)
    #[arg(long, value_name = "FILE")]
    pub repo_password_file: Option<PathBuf>,
    /// The cluster's superuser (its password: QRD_PASSWORD_<ROLE>, else kept from an earlier run, else generated)
    #[arg(long, value_name = "ROLE", default_value = "postgres")]
    pub superuser: String,
    /// The replication role (its password: QRD_REPLICATION_PASSWORD, else kept, else generated)
    #[arg(long, value_name = "ROLE", default_value = "replicator")]
    pub replicator: String,
    /// The role pg_rewind connects as (its password: QRD_PASSWORD_<ROLE>, else kept, else generated)
    #[arg(long, value_name = "ROLE", default_value = "qrd_rewind")]
    pub rewinder: String,
    /// The OS user Patroni runs as (owner of the files)
    #[arg(long, value_name = "USER", default_value = spec::DEFAULT_SERVICE_USER)]
    pub service_user: String,
    /// Stage every machine's files under DIR/<machine>/ (copy each tree onto that machine's /)
    #[arg(long, value_name = "DIR", required_unless_present = "install", conflicts_with = "install")]
    pub out: Option<PathBuf>,
    /// Write the files at their paths on this machine (a lab with --prefix, or one machine with --only)
    #[arg(long)]
    pub install: bool,
    /// Only this machine's files: a member's name, etcd-<name> or haproxy (repeatable)
    #[arg(long, value_name = "MACHINE")]
    pub only: Vec<String>,
    /// Print the diffs; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
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
    /// Parallel pg_dump/pg_restore workers [default: the machine's cores]
    #[arg(long, value_name = "N")]
    pub jobs: Option<u32>,
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
        HaCommand::Init(a) => init(*a),
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
        let endpoint = cref
            .endpoint
            .clone()
            .ok_or_else(|| usage("no endpoint known: pass -h and -p (HAProxy's or the leader's)"))?;
        let (h, p) = endpoint.rsplit_once(':').unwrap_or((endpoint.as_str(), "4432"));
        opts.host = Some(h.trim_matches(['[', ']']).to_owned());
        opts.port = Some(p.parse().unwrap_or(spec::DEFAULT_PG_PORT));
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
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let req = AdoptRequest {
        jobs: a.jobs.unwrap_or(cores).max(1),
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
    use qrd_ha::setparam;
    let cref = a.cluster.cluster_ref()?;
    let pairs = setparam::parse_pairs(&a.pairs)?;
    let (dry_run, restart, wait) = (a.dry_run, !a.no_restart, Duration::from_secs(a.wait));
    let report = tokio::task::spawn_blocking(move || -> Result<_, qrd_ha::HaError> {
        let config = cref.api().config()?;
        let changes = setparam::plan(&config, &pairs)?;
        if dry_run {
            return Ok(setparam::SetParamReport { changes, restarts: Vec::new(), pending: Vec::new() });
        }
        setparam::apply(&cref, changes, restart, wait)
    })
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

fn usage(msg: impl Into<String>) -> CliError {
    CliError::new(ExitStatus::Usage, msg)
}

fn init(a: InitArgs) -> Result<ExitStatus, CliError> {
    let (ep_host, ep_port) = match a.endpoint.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h.trim_matches(['[', ']']).to_owned(),
            p.parse().map_err(|_| usage(format!("--endpoint {}: the port is not a number", a.endpoint)))?,
        ),
        _ => (a.endpoint.clone(), spec::DEFAULT_PG_PORT),
    };
    let nodes = a
        .nodes
        .iter()
        .map(|n| qrd_conf::hba::Address::parse_node(n).map_err(|e| usage(format!("--node {n}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = if a.no_tls {
        Tls::Off
    } else if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        Tls::Files { cert: cert.clone(), key: key.clone(), ca: a.tls_ca.clone() }
    } else if a.tls_generate {
        Tls::Generate
    } else {
        return Err(usage(
            "choose the members' certificate: --tls-cert/--tls-key, --tls-generate (a lab CA), or --no-tls",
        ));
    };
    let spec = ClusterSpec {
        scope: a.scope,
        major: a.major,
        members: a.members.into_iter().map(|(name, host)| Member { name, host }).collect(),
        etcd: a
            .etcd
            .into_iter()
            .map(|(name, host)| EtcdMember { name, host, client_port: a.etcd_port, peer_port: a.etcd_port + 1 })
            .collect(),
        endpoint: (ep_host, ep_port),
        haproxy_source: a.haproxy_source,
        stats_port: spec::DEFAULT_STATS_PORT,
        vip: a.vip.map(|address| Vip { address, interface: a.vip_interface.unwrap_or_default() }),
        node_count: a.node_count.unwrap_or(nodes.len().max(1) as u32),
        nodes,
        role: a.repo_user,
        superuser: a.superuser,
        replicator: a.replicator,
        rewinder: a.rewinder,
        pg_port: spec::DEFAULT_PG_PORT,
        api_port: spec::DEFAULT_API_PORT,
        prefix: a.prefix,
        bin_dir: a.bin_dir.unwrap_or_else(|| PathBuf::from(format!("/usr/lib/postgresql/{}/bin", a.major))),
        tls,
        timing: Timing { ttl: a.ttl, loop_wait: a.loop_wait, retry_timeout: a.retry_timeout },
        service_user: a.service_user,
    };
    let env_pw = |var: &str| password::from_env(var).map_err(|e| usage(e.to_string()));
    let secrets = GivenSecrets {
        superuser: env_pw(&source::password_env(&spec.superuser))?,
        replication: source::replication_password(None, false, false)?,
        rewind: env_pw(&source::password_env(&spec.rewinder))?,
        restapi: env_pw(source::PATRONI_API_PASSWORD_ENV)?,
    };
    let repo_password = match source::repo_password(a.repo_password_file.as_deref())? {
        Some(p) => p,
        None => source::prompt_repo_password(&spec.role)?,
    };
    let req = InitRequest {
        spec,
        secrets,
        repo_password,
        destination: match a.out {
            Some(dir) => Destination::Staging(dir),
            None => Destination::Install,
        },
        only: a.only,
    };
    let plan = qrd_ha::init::plan(&req)?;
    for w in &plan.warnings {
        note(format!("warning: {w}"));
    }
    if a.dry_run {
        if a.json {
            crate::output::print_json(&plan);
        } else {
            for f in &plan.files {
                match (&f.action, &f.diff) {
                    (Action::Unchanged, _) => {}
                    (_, Some(d)) => print!("{d}"),
                    (action, None) => println!(
                        "{:?} {} (secret, {} bytes: not shown)",
                        action,
                        f.dest.display(),
                        f.file.contents.len()
                    ),
                }
            }
        }
        note(format!("dry run: {} file(s) would change; nothing was written", plan.changes()));
        return Ok(ExitStatus::Success);
    }
    let written = qrd_ha::init::apply(&plan)?;
    if a.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            plan: &'a qrd_ha::init::Plan,
            written: &'a [qrd_ha::init::Written],
        }
        crate::output::print_json(&Out { plan: &plan, written: &written });
        return Ok(ExitStatus::Success);
    }
    for f in &plan.files {
        let what = match f.action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Unchanged => "unchanged",
        };
        println!("{what:<9} {:<12} {} ({})", f.file.machine, f.dest.display(), f.file.what);
    }
    println!(
        "passwords: superuser {}, replication {}, rewind {}, REST API {} (in each member's env file only)",
        plan.secrets.superuser, plan.secrets.replication, plan.secrets.rewind, plan.secrets.restapi
    );
    println!(
        "the Qlik nodes' repository connection strings and appsettings.json name one Host: {} (HAProxy)",
        plan.endpoint
    );
    let host = plan.endpoint.rsplit_once(':').map(|(h, _)| h).unwrap_or(&plan.endpoint);
    println!("once it runs: qrd ha check --members, and qrd check -h {host} --node NODE --via {host}");
    Ok(ExitStatus::Success)
}

async fn status(a: StatusArgs) -> Result<ExitStatus, CliError> {
    let cref = a.cluster.cluster_ref()?;
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
