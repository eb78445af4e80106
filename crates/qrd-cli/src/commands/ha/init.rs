//! `qrd ha init`: the arguments that describe a cluster, the call into `qrd_ha::init` (plan, then write)
//! and the report of the files.

use std::path::PathBuf;

use clap::Args;
use qrd_ha::envfile::{self, GivenSecrets};
use qrd_ha::init::{Action, Destination, InitRequest};
use qrd_ha::spec::{self, ClusterSpec, EtcdMember, Member, Timing, Tls, Vip};

use crate::error::{CliError, ExitStatus};
use crate::output::note;

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
    /// The members' certificate (PEM; it must name every member, the etcd members and the endpoint), with --tls-ca
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with_all = ["tls_generate", "no_tls"])]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA that signed it, copied beside it: Patroni, HAProxy, qrd and the nodes verify with it
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Make a lab CA and a certificate naming every member, etcd and the endpoint
    #[arg(long, conflicts_with = "no_tls")]
    pub tls_generate: bool,
    /// No TLS for PostgreSQL, the REST API and etcd (passwords would cross the network in the clear)
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

pub fn execute(a: InitArgs) -> Result<ExitStatus, CliError> {
    let endpoint = spec::parse_endpoint(&a.endpoint)?;
    let nodes = spec::parse_nodes(&a.nodes)?;
    let files = a.tls_cert.zip(a.tls_key).map(|(cert, key)| (cert, key, a.tls_ca));
    let tls = Tls::choose(a.no_tls, files, a.tls_generate)?;
    let spec = ClusterSpec {
        scope: a.scope,
        major: a.major,
        members: a.members.into_iter().map(|(name, host)| Member { name, host }).collect(),
        etcd: a
            .etcd
            .into_iter()
            .map(|(name, host)| EtcdMember { name, host, client_port: a.etcd_port, peer_port: a.etcd_port + 1 })
            .collect(),
        endpoint,
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
    let secrets = GivenSecrets::from_env(&spec.superuser, &spec.rewinder)?;
    let repo_password = envfile::repo_password(a.repo_password_file.as_deref(), &spec.role)?;
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
            plan.files.iter().filter_map(|f| f.preview()).for_each(|p| print!("{p}"));
        }
        note(format!("dry run: {} file(s) would change; nothing was written", plan.changes()));
        return Ok(ExitStatus::Success);
    }
    let written = qrd_ha::init::apply(&plan)?;
    if a.json {
        crate::output::print_json(&qrd_ha::init::InitReport { plan, written });
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
    let host = plan.endpoint_host();
    println!("once it runs: qrd ha check --members, and qrd check -h {host} --node NODE --via {host}");
    Ok(ExitStatus::Success)
}
