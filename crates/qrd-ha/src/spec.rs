//! What a Qlik repository cluster is made of: its members, the etcd members that hold its state, the
//! endpoint the Qlik nodes connect to, and where each file lives on each machine.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use qrd_conf::hba::Address;
use serde::Serialize;

use crate::HaError;

/// The cluster name (Patroni's `scope`) when none is given.
pub const DEFAULT_SCOPE: &str = "qlik-repository";
/// The Qlik repository's port, on every member and on the endpoint.
pub const DEFAULT_PG_PORT: u16 = 4432;
/// Patroni's REST API port.
pub const DEFAULT_API_PORT: u16 = 8008;
/// HAProxy's statistics page (CSV at `/;csv`), which `qrd ha status` and `check` read.
pub const DEFAULT_STATS_PORT: u16 = 7000;
/// The user Patroni and PostgreSQL run as (Debian's `patroni@.service`).
pub const DEFAULT_SERVICE_USER: &str = "postgres";
/// The REST API user for the requests that change something (switchover, restart, configuration).
pub const API_USER: &str = "qrd";

/// One PostgreSQL + Patroni member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Patroni's `name`, unique in the cluster (e.g. the host's short name).
    pub name: String,
    /// The address the other members, HAProxy and the DBA reach it at (an IP address, or a DNS name).
    pub host: String,
}

/// One etcd member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdMember {
    pub name: String,
    pub host: String,
    pub client_port: u16,
    pub peer_port: u16,
}

impl EtcdMember {
    /// Where Patroni, vip-manager and qrd reach it: `https` when the cluster has a certificate.
    pub fn client_url(&self, scheme: &str) -> String {
        format!("{scheme}://{}:{}", url_host(&self.host), self.client_port)
    }

    /// Where the other etcd members reach it. Plain HTTP: etcd makes a peer that is given a CA demand a
    /// client certificate of the peers, and a server certificate is not one (its purpose is serverAuth).
    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", url_host(&self.host), self.peer_port)
    }
}

/// Patroni's leader-lease timing, seconds. Patroni requires `loop_wait + 2 * retry_timeout <= ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub ttl: u32,
    pub loop_wait: u32,
    pub retry_timeout: u32,
}

impl Default for Timing {
    /// Patroni's defaults: a crashed leader's lease runs out after at most 30 s.
    fn default() -> Self {
        Timing { ttl: 30, loop_wait: 10, retry_timeout: 10 }
    }
}

/// The server certificate every member presents (PostgreSQL, Patroni's REST API), and etcd too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// No TLS (not for production: the Qlik nodes send the repository password over it).
    Off,
    /// These files (PEM), copied to every member: the certificate must name every member, the etcd members
    /// and the endpoint; the CA is what Patroni, HAProxy and qrd verify it with.
    Files { cert: PathBuf, key: PathBuf, ca: PathBuf },
    /// A lab CA and one certificate naming every member and the endpoint (`qrd ssl enable --self-signed`'s
    /// kind): for tests and labs; the nodes then need the CA to verify it.
    Generate,
}

impl Tls {
    /// The certificate as the command line chose it: `--no-tls`, given files, or a lab CA (`generate`). No
    /// choice is a usage error, and so are files without their CA: the REST API and etcd are verified
    /// against it.
    pub fn choose(
        no_tls: bool,
        files: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
        generate: bool,
    ) -> Result<Tls, HaError> {
        match (no_tls, files, generate) {
            (true, _, _) => Ok(Tls::Off),
            (_, Some((cert, key, Some(ca))), _) => Ok(Tls::Files { cert, key, ca }),
            (_, Some((_, _, None)), _) => Err(HaError::Usage(
                "--tls-ca is needed with --tls-cert: Patroni's REST API, etcd and HAProxy's checks of the members \
                 are verified against the CA that signed it"
                    .into(),
            )),
            (_, None, true) => Ok(Tls::Generate),
            (_, None, false) => Err(HaError::Usage(
                "choose the members' certificate: --tls-cert/--tls-key, --tls-generate (a lab CA), or --no-tls".into(),
            )),
        }
    }
}

/// A virtual IP that follows the leader (vip-manager), instead of or besides HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vip {
    /// ADDR/PREFIX
    pub address: String,
    /// The network interface it is added to on the leader's machine.
    pub interface: String,
}

/// Everything `qrd ha init` needs to know.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub scope: String,
    pub major: u32,
    pub members: Vec<Member>,
    pub etcd: Vec<EtcdMember>,
    /// What the Qlik nodes connect to: HAProxy's frontend, `(host, port)`.
    pub endpoint: (String, u16),
    /// The address HAProxy connects to the members from (its `source`), admitted by pg_hba; without it,
    /// the endpoint's host is admitted (HAProxy on that machine connects from its own address).
    pub haproxy_source: Option<IpAddr>,
    pub stats_port: u16,
    pub vip: Option<Vip>,
    /// The Qlik nodes' addresses (pg_hba rules, as `qrd hba allow-nodes` writes them).
    pub nodes: Vec<Address>,
    /// How many Qlik nodes use the repository (max_connections, the guide's 110 per node).
    pub node_count: u32,
    /// The repository role.
    pub role: String,
    pub superuser: String,
    pub replicator: String,
    pub rewinder: String,
    pub pg_port: u16,
    pub api_port: u16,
    /// Lab layout: every member's files under `PREFIX/<member>/` (several members on one machine);
    /// `None` is Debian's layout on machines of their own.
    pub prefix: Option<PathBuf>,
    /// PostgreSQL's server programs on the members.
    pub bin_dir: PathBuf,
    pub tls: Tls,
    pub timing: Timing,
    /// The OS user Patroni and PostgreSQL run as (owner of the files written).
    pub service_user: String,
}

/// Where a member's files are on its machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPaths {
    /// patroni.yml
    pub config: PathBuf,
    /// The credentials (0600), read by systemd's `EnvironmentFile=`.
    pub env: PathBuf,
    /// The systemd drop-in that hands the env file to `patroni@<major>-<scope>` (Debian layout only).
    pub dropin: Option<PathBuf>,
    pub bootstrap_sql: PathBuf,
    pub post_bootstrap: PathBuf,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    /// The password file Patroni writes for its own connections (0600).
    pub pgpass: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub tls_ca: PathBuf,
}

impl ClusterSpec {
    /// `<major>-<scope>`: Debian's instance name (`patroni@15-qlik-repository`, `/etc/patroni/15-….yml`).
    pub fn instance(&self) -> String {
        format!("{}-{}", self.major, self.scope)
    }

    pub fn member_paths(&self, m: &Member) -> MemberPaths {
        match &self.prefix {
            Some(prefix) => {
                let d = prefix.join(&m.name);
                MemberPaths {
                    config: d.join("patroni.yml"),
                    env: d.join("patroni.env"),
                    dropin: None,
                    bootstrap_sql: d.join("qrd-bootstrap.sql"),
                    post_bootstrap: d.join("qrd-post-bootstrap.sh"),
                    data_dir: d.join("data"),
                    socket_dir: d.join("sock"),
                    pgpass: d.join("pgpass"),
                    tls_cert: d.join("tls/server.crt"),
                    tls_key: d.join("tls/server.key"),
                    tls_ca: d.join("tls/ca.crt"),
                }
            }
            None => {
                let i = self.instance();
                let etc = Path::new("/etc/patroni");
                MemberPaths {
                    config: etc.join(format!("{i}.yml")),
                    env: etc.join(format!("{i}.env")),
                    dropin: Some(PathBuf::from(format!("/etc/systemd/system/patroni@{i}.service.d/qrd.conf"))),
                    bootstrap_sql: etc.join(format!("{i}-qrd-bootstrap.sql")),
                    post_bootstrap: etc.join(format!("{i}-qrd-post-bootstrap.sh")),
                    data_dir: PathBuf::from(format!("/var/lib/postgresql/{}/{}", self.major, self.scope)),
                    socket_dir: PathBuf::from("/var/run/postgresql"),
                    pgpass: PathBuf::from(format!("/var/lib/postgresql/{i}.pgpass")),
                    tls_cert: etc.join(format!("tls/{i}.crt")),
                    tls_key: etc.join(format!("tls/{i}.key")),
                    tls_ca: etc.join(format!("tls/{i}-ca.crt")),
                }
            }
        }
    }

    /// An etcd member's environment file (etcd reads `ETCD_*` variables) and data directory.
    pub fn etcd_paths(&self, e: &EtcdMember) -> (PathBuf, PathBuf) {
        match &self.prefix {
            Some(prefix) => {
                let d = prefix.join(format!("etcd-{}", e.name));
                (d.join("etcd.env"), d.join("data"))
            }
            // Debian's etcd.service reads /etc/default/etcd.
            None => (PathBuf::from("/etc/default/etcd"), PathBuf::from("/var/lib/etcd/qrd")),
        }
    }

    pub fn haproxy_path(&self) -> PathBuf {
        match &self.prefix {
            Some(prefix) => prefix.join("haproxy/haproxy.cfg"),
            None => PathBuf::from("/etc/haproxy/haproxy.cfg"),
        }
    }

    pub fn vip_manager_path(&self) -> PathBuf {
        match &self.prefix {
            Some(prefix) => prefix.join("vip-manager/vip-manager.yml"),
            None => PathBuf::from("/etc/default/vip-manager.yml"),
        }
    }

    /// `https` when the members have a certificate (the REST API and etcd use it too), else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls == Tls::Off { "http" } else { "https" }
    }

    /// Each member's REST API, `https://host:port`.
    pub fn api_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("{}://{}:{}", self.scheme(), url_host(&m.host), self.api_port)).collect()
    }

    /// An etcd member's certificate and key (the members' own, copied).
    pub fn etcd_tls_paths(&self, e: &EtcdMember) -> (PathBuf, PathBuf) {
        match &self.prefix {
            Some(prefix) => {
                let d = prefix.join(format!("etcd-{}", e.name)).join("tls");
                (d.join("server.crt"), d.join("server.key"))
            }
            None => (PathBuf::from("/etc/etcd/qrd/server.crt"), PathBuf::from("/etc/etcd/qrd/server.key")),
        }
    }

    /// The CA HAProxy verifies the members' REST API with.
    pub fn haproxy_ca_path(&self) -> PathBuf {
        match &self.prefix {
            Some(prefix) => prefix.join("haproxy/ca.crt"),
            None => PathBuf::from("/etc/haproxy/qrd-cluster-ca.crt"),
        }
    }

    /// The DCS key prefix Patroni keeps this cluster under.
    pub fn namespace(&self) -> &'static str {
        "/service/"
    }

    /// The guide's max_connections for the nodes (110 per node), never below Patroni's needs.
    pub fn max_connections(&self) -> u32 {
        qrd_check::guide_max_connections(self.node_count.max(1), qrd_check::DEFAULT_POOL_SIZE).max(100)
    }

    /// Refuses a spec Patroni, etcd or HAProxy would refuse or run badly, with the reason.
    pub fn validate(&self) -> Result<(), HaError> {
        let bad = |reason: String| Err(HaError::Spec { reason });
        if self.members.is_empty() {
            return bad("no member given (--member NAME=HOST, at least two for a failover)".into());
        }
        let mut names: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("member name {:?} is given twice", w[0]));
        }
        for m in &self.members {
            if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return bad(format!(
                    "member name {:?}: use letters, digits, '-' and '_' (it becomes a replication slot and a file name)",
                    m.name
                ));
            }
            if m.host.is_empty() || m.host.contains(char::is_whitespace) {
                return bad(format!("member {:?} has no usable host", m.name));
            }
        }
        if self.etcd.is_empty() {
            return bad("no etcd member given (--etcd NAME=HOST; three for production)".into());
        }
        if self.scope.is_empty() || !self.scope.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad(format!("cluster name {:?}: use letters, digits, '-' and '_'", self.scope));
        }
        let t = self.timing;
        if t.loop_wait + 2 * t.retry_timeout > t.ttl {
            return bad(format!(
                "ttl {} is too short for loop_wait {} and retry_timeout {} (Patroni needs loop_wait + 2 × \
                 retry_timeout ≤ ttl)",
                t.ttl, t.loop_wait, t.retry_timeout
            ));
        }
        if !(12..=16).contains(&self.major) {
            return bad(format!("PostgreSQL {} is not supported (12–16)", self.major));
        }
        for name in [&self.role, &self.superuser, &self.replicator, &self.rewinder] {
            if name.is_empty() {
                return bad("a role name is empty".into());
            }
        }
        let roles = [&self.role, &self.superuser, &self.replicator, &self.rewinder];
        for (i, a) in roles.iter().enumerate() {
            if roles[i + 1..].contains(a) {
                return bad(format!("role {a:?} is given for two purposes; each needs its own"));
            }
        }
        Ok(())
    }
}

pub use qrd_pg::endpoint::url_host;

/// `HOST[:PORT]` as typed on the command line (an IPv6 address in brackets when a port follows): the host
/// without brackets, and the port (4432 when none is given).
pub fn parse_endpoint(s: &str) -> Result<(String, u16), HaError> {
    let endpoint = qrd_pg::HostPort::parse(s).map_err(|e| HaError::Usage(format!("--endpoint: {e}")))?;
    Ok(endpoint.or_port(DEFAULT_PG_PORT))
}

/// The Qlik nodes' `ADDR[/PREFIX]` as typed (`--node`).
pub fn parse_nodes(nodes: &[String]) -> Result<Vec<Address>, HaError> {
    nodes.iter().map(|n| Address::parse_node(n).map_err(|e| HaError::Usage(format!("--node {n}: {e}")))).collect()
}

/// `NAME=HOST` as typed on the command line.
pub fn parse_named(s: &str) -> Result<(String, String), String> {
    let (n, h) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=HOST"))?;
    if n.is_empty() || h.is_empty() {
        return Err(format!("{s:?} is not NAME=HOST"));
    }
    Ok((n.to_owned(), h.to_owned()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn lab() -> ClusterSpec {
        ClusterSpec {
            scope: DEFAULT_SCOPE.into(),
            major: 15,
            members: ["pg1", "pg2", "pg3"]
                .iter()
                .enumerate()
                .map(|(i, n)| Member { name: (*n).into(), host: format!("10.0.4.{}", 11 + i) })
                .collect(),
            etcd: vec![EtcdMember { name: "e1".into(), host: "10.0.4.2".into(), client_port: 2379, peer_port: 2380 }],
            endpoint: ("10.0.4.3".into(), 4432),
            haproxy_source: None,
            stats_port: DEFAULT_STATS_PORT,
            vip: None,
            nodes: vec![Address::parse_node("10.0.5.0/24").unwrap()],
            node_count: 3,
            role: "qliksenserepository".into(),
            superuser: "postgres".into(),
            replicator: "replicator".into(),
            rewinder: "qrd_rewind".into(),
            pg_port: DEFAULT_PG_PORT,
            api_port: DEFAULT_API_PORT,
            prefix: None,
            bin_dir: "/usr/lib/postgresql/15/bin".into(),
            tls: Tls::Generate,
            timing: Timing::default(),
            service_user: DEFAULT_SERVICE_USER.into(),
        }
    }

    /// The reason of the `HaError::Spec` that `validate` must return.
    fn refusal(s: &ClusterSpec) -> String {
        match s.validate() {
            Err(HaError::Spec { reason }) => reason,
            other => panic!("expected HaError::Spec, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_problem() {
        lab().validate().unwrap_or_else(|e| panic!("the lab spec is valid: {e}"));
        let mut s = lab();
        s.members[1].name = "pg1".into();
        assert!(refusal(&s).contains("\"pg1\" is given twice"));
        let mut s = lab();
        s.timing = Timing { ttl: 20, loop_wait: 10, retry_timeout: 10 };
        assert!(refusal(&s).contains("loop_wait + 2 × retry_timeout"));
        let mut s = lab();
        s.rewinder = "replicator".into();
        assert!(refusal(&s).contains("two purposes"));
        let mut s = lab();
        s.members[0].name = "pg 1".into();
        assert!(refusal(&s).starts_with("member name \"pg 1\": use letters, digits"), "{}", refusal(&s));
    }

    #[test]
    fn debian_layout_matches_the_packaged_unit() {
        let s = lab();
        let p = s.member_paths(&s.members[0]);
        assert_eq!(p.config, Path::new("/etc/patroni/15-qlik-repository.yml"));
        assert_eq!(p.dropin.unwrap(), Path::new("/etc/systemd/system/patroni@15-qlik-repository.service.d/qrd.conf"));
        assert_eq!(p.data_dir, Path::new("/var/lib/postgresql/15/qlik-repository"));
        assert_eq!(s.max_connections(), 330);
        assert_eq!(url_host("::1"), "[::1]");
    }

    #[test]
    fn endpoints_as_typed() {
        assert_eq!(parse_endpoint("10.0.4.30").unwrap(), ("10.0.4.30".into(), 4432));
        assert_eq!(parse_endpoint("db.example:5432").unwrap(), ("db.example".into(), 5432));
        assert_eq!(parse_endpoint("[::1]:4433").unwrap(), ("::1".into(), 4433));
        assert_eq!(parse_endpoint("::1").unwrap(), ("::1".into(), 4432));
        assert_eq!(parse_endpoint("[::1]").unwrap(), ("::1".into(), 4432));
        let e = parse_endpoint("h:port").unwrap_err();
        assert!(matches!(&e, HaError::Usage(m) if m.contains("the port is not a number")), "{e}");
    }

    #[test]
    fn a_certificate_must_be_chosen_with_its_ca() {
        assert_eq!(Tls::choose(true, None, false).unwrap(), Tls::Off);
        assert_eq!(Tls::choose(false, None, true).unwrap(), Tls::Generate);
        let e = Tls::choose(false, Some(("c".into(), "k".into(), None)), false).unwrap_err();
        assert!(matches!(&e, HaError::Usage(m) if m.contains("--tls-ca")), "{e}");
        let e = Tls::choose(false, None, false).unwrap_err();
        assert!(matches!(&e, HaError::Usage(m) if m.contains("--tls-generate")), "{e}");
    }
}
