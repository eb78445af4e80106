//! The files of a Qlik repository cluster, rendered from a [`ClusterSpec`]: each member's `patroni.yml`,
//! credentials, bootstrap script, TLS files and systemd drop-in; each etcd member's settings; HAProxy's
//! configuration; vip-manager's where a VIP is wanted.
//!
//! Choices, each from something measured or documented (see the issue and `README.md`, "High
//! availability"):
//! - `etcd3:` (etcd 3.4 as Debian packages it answers no v2 requests), `failsafe_mode: true` (the leader
//!   keeps writing through an etcd outage as long as it reaches every member);
//! - replicas clone with `basebackup: checkpoint: fast` (minutes otherwise on a quiet primary);
//! - `use_pg_rewind` with `wal_log_hints` and data checksums, `use_slots`;
//! - one pg_hba list for every member, in the DCS (`bootstrap.dcs.postgresql.pg_hba`), with the Qlik
//!   nodes' rules as `qrd hba allow-nodes` writes them; `max_connections` in the DCS too (Patroni ignores a
//!   member's own value for it);
//! - credentials only in the 0600 env file; the repository role's verifier only in the 0600 bootstrap
//!   script; neither in the YAML;
//! - with a certificate, Patroni's REST API (basic authentication for the requests that change something)
//!   and etcd's client port speak HTTPS only, verified against the cluster's CA by Patroni, HAProxy's
//!   checks, vip-manager and qrd; without one (`--no-tls`), everything is in the clear.

use std::path::PathBuf;

use qrd_conf::hba::{Address, ConnType, Method, Record, Token};
use qrd_pg::password::Secret;
use qrd_pg::spec::{QLIK_DATABASES, RepoSpec};
use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

use crate::HaError;
use crate::envfile::{self, Secrets};
use crate::spec::{ClusterSpec, Member, url_host};

/// One file of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct File {
    /// The machine it belongs on: a member's name, `etcd-<name>`, or `haproxy`.
    pub machine: String,
    /// Its path on that machine.
    pub path: PathBuf,
    pub mode: u32,
    /// Holds a password, key or verifier: its content is never printed.
    pub secret: bool,
    /// Owned by root rather than the service user (systemd's drop-ins, HAProxy's and etcd's settings).
    pub root_owned: bool,
    /// Owned by this OS user instead (etcd's key: Debian's etcd runs as `etcd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// What it is, for the report.
    pub what: &'static str,
    #[serde(skip)]
    pub contents: Vec<u8>,
}

/// TLS material, the same on every member.
#[derive(Clone)]
pub struct TlsMaterial {
    pub cert_pem: String,
    pub key_pem: Secret,
    pub ca_pem: Option<String>,
}

/// What rendering needs besides the spec.
pub struct Inputs<'a> {
    pub secrets: &'a Secrets,
    /// The repository role's password verifier (for the bootstrap script).
    pub repo_verifier: &'a Secret,
    pub tls: Option<&'a TlsMaterial>,
}

/// Every file of the cluster.
pub fn render(spec: &ClusterSpec, inputs: &Inputs<'_>) -> Result<Vec<File>, HaError> {
    let mut files = Vec::new();
    let bootstrap_sql = qrd_pg::provision::bootstrap_script(
        spec.major,
        &spec.superuser,
        "scram-sha-256",
        &RepoSpec::new(&spec.role),
        inputs.repo_verifier,
    )
    .map_err(|e| HaError::Spec { reason: e.to_string() })?;
    for m in &spec.members {
        let p = spec.member_paths(m);
        let file = |path: PathBuf, mode: u32, secret: bool, what: &'static str, contents: Vec<u8>| File {
            machine: m.name.clone(),
            path,
            mode,
            secret,
            root_owned: false,
            user: None,
            what,
            contents,
        };
        files.push(file(p.config.clone(), 0o640, false, "Patroni configuration", patroni_yml(spec, m, inputs)?));
        files.push(file(
            p.env.clone(),
            0o600,
            true,
            "credentials (EnvironmentFile)",
            envfile::render(&spec.scope, &m.name, inputs.secrets).into_bytes(),
        ));
        files.push(file(
            p.bootstrap_sql.clone(),
            0o600,
            true,
            "repository role, databases and grants (post_bootstrap)",
            bootstrap_sql.clone().into_bytes(),
        ));
        files.push(file(p.post_bootstrap.clone(), 0o750, false, "post_bootstrap script", post_bootstrap(spec, m)));
        if let Some(tls) = inputs.tls {
            files.push(file(p.tls_cert.clone(), 0o644, false, "server certificate", tls.cert_pem.clone().into_bytes()));
            files.push(file(p.tls_key.clone(), 0o600, true, "server key", tls.key_pem.expose().as_bytes().to_vec()));
            if let Some(ca) = &tls.ca_pem {
                files.push(file(p.tls_ca.clone(), 0o644, false, "CA certificate", ca.clone().into_bytes()));
            }
        }
        if let Some(dropin) = &p.dropin {
            let mut f = file(dropin.clone(), 0o644, false, "systemd drop-in for patroni@", dropin_text(spec, m));
            f.root_owned = true;
            files.push(f);
        }
        if let Some(vip) = &spec.vip {
            let mut f =
                file(spec.vip_manager_path(), 0o644, false, "vip-manager configuration", vip_yml(spec, m, vip)?);
            f.root_owned = true;
            files.push(f);
        }
    }
    let root_file = |machine: String, path: PathBuf, what: &'static str, contents: Vec<u8>| File {
        machine,
        path,
        mode: 0o644,
        secret: false,
        root_owned: true,
        user: None,
        what,
        contents,
    };
    for e in &spec.etcd {
        let machine = format!("etcd-{}", e.name);
        let (env, _) = spec.etcd_paths(e);
        files.push(root_file(machine.clone(), env, "etcd settings (ETCD_* variables)", etcd_env(spec, e).into_bytes()));
        if let Some(tls) = inputs.tls {
            let (cert, key) = spec.etcd_tls_paths(e);
            files.push(root_file(machine.clone(), cert, "etcd's certificate", tls.cert_pem.clone().into_bytes()));
            files.push(File {
                mode: 0o600,
                secret: true,
                // Debian's etcd.service runs etcd as etcd; a lab's etcd runs as whoever starts it.
                user: spec.prefix.is_none().then(|| "etcd".to_owned()),
                ..root_file(machine, key, "etcd's key", tls.key_pem.expose().as_bytes().to_vec())
            });
        }
    }
    files.push(root_file(
        "haproxy".into(),
        spec.haproxy_path(),
        "HAProxy configuration",
        haproxy_cfg(spec).into_bytes(),
    ));
    if let Some(ca) = inputs.tls.and_then(|t| t.ca_pem.as_ref()) {
        files.push(root_file(
            "haproxy".into(),
            spec.haproxy_ca_path(),
            "CA certificate (HAProxy's checks of the REST API)",
            ca.clone().into_bytes(),
        ));
    }
    Ok(files)
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

fn n(v: u32) -> Value {
    Value::Number(v.into())
}

fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    map_of(pairs)
}

fn map_of<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

/// The settings every member shares, kept in the DCS.
fn dcs_parameters(spec: &ClusterSpec) -> Value {
    let mut m = Mapping::new();
    let mut set = |k: &str, v: Value| {
        m.insert(s(k), v);
    };
    set("max_connections", n(spec.max_connections()));
    set("password_encryption", s("scram-sha-256"));
    set("wal_level", s("replica"));
    set("hot_standby", s("on"));
    set("wal_log_hints", s("on"));
    set("max_wal_senders", n(10));
    set("max_replication_slots", n(10));
    if spec.major >= 13 {
        set("wal_keep_size", s("1GB"));
    } else {
        // wal_keep_segments is gone since 13; on 12 it is the only way to keep WAL for a lagging replica.
        set("wal_keep_segments", n(64));
    }
    if spec.tls != crate::spec::Tls::Off {
        set("ssl", s("on"));
        set("ssl_min_protocol_version", s("TLSv1.2"));
    }
    Value::Mapping(m)
}

/// pg_hba.conf, the same on every member: local peer, the superuser from localhost and the members,
/// replication and rewind from the members, the repository role from the Qlik nodes and HAProxy.
pub fn hba_lines(spec: &ClusterSpec) -> Vec<String> {
    let remote = if spec.tls == crate::spec::Tls::Off { ConnType::Host } else { ConnType::HostSsl };
    let scram = Method::ScramSha256;
    let localhost = ["127.0.0.1/32", "::1/128"].map(|a| Address::parse(a).expect("valid"));
    let members: Vec<Address> = spec.members.iter().map(|m| host_address(&m.host)).collect();
    let mut rules = vec![Record::new(
        ConnType::Local,
        vec![Token::keyword("all")],
        vec![Token::keyword("all")],
        None,
        Method::Peer,
    )];
    let rule = |t: ConnType, dbs: Vec<Token>, user: &str, a: &Address| {
        Record::new(t, dbs, vec![Token::name(user)], Some(a.clone()), scram)
    };
    for a in &localhost {
        rules.push(rule(ConnType::Host, vec![Token::keyword("all")], &spec.superuser, a));
        rules.push(rule(ConnType::Host, vec![Token::keyword("replication")], &spec.replicator, a));
        rules.push(rule(ConnType::Host, vec![Token::name("postgres")], &spec.rewinder, a));
    }
    for a in &members {
        rules.push(rule(remote, vec![Token::keyword("all")], &spec.superuser, a));
        rules.push(rule(remote, vec![Token::keyword("replication")], &spec.replicator, a));
        rules.push(rule(remote, vec![Token::name("postgres")], &spec.rewinder, a));
    }
    let qlik: Vec<Token> = QLIK_DATABASES.iter().map(|d| Token::name(d)).collect();
    // HAProxy connects from its own address: pg_hba sees it, not the Qlik node behind it.
    let haproxy = match spec.haproxy_source {
        Some(ip) => host_address(&ip.to_string()),
        None => host_address(&spec.endpoint.0),
    };
    for a in spec.nodes.iter().chain([&haproxy]) {
        rules.push(rule(remote, qlik.clone(), &spec.role, a));
    }
    // The DBA's qrd commands (check, backup, provision) through the endpoint, as the superuser.
    rules.push(rule(remote, vec![Token::keyword("all")], &spec.superuser, &haproxy));
    let mut lines: Vec<String> = Vec::new();
    for r in rules {
        let line = r.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// A member's or node's host as a pg_hba address: an IP becomes `/32` or `/128`; a name stays a name.
fn host_address(host: &str) -> Address {
    Address::parse_node(host)
        .or_else(|_| Address::parse(host))
        .unwrap_or_else(|_| Address::parse("samehost").expect("valid"))
}

fn patroni_yml(spec: &ClusterSpec, m: &Member, inputs: &Inputs<'_>) -> Result<Vec<u8>, HaError> {
    let p = spec.member_paths(m);
    let api = format!("{}:{}", url_host(&m.host), spec.api_port);
    let pg = format!("{}:{}", url_host(&m.host), spec.pg_port);
    let etcd_hosts: Vec<Value> =
        spec.etcd.iter().map(|e| s(format!("{}:{}", url_host(&e.host), e.client_port))).collect();
    // With a certificate, the REST API speaks HTTPS only (Patroni uses the same files as a client of the
    // other members' APIs, verifying them against the CA), and etcd is reached over HTTPS, verified too.
    let ca = inputs.tls.and_then(|t| t.ca_pem.as_ref()).map(|_| s(p.tls_ca.display().to_string()));
    let mut restapi = vec![("listen", s(&api)), ("connect_address", s(&api))];
    let mut etcd3 = vec![("hosts", Value::Sequence(etcd_hosts))];
    if inputs.tls.is_some() {
        restapi.push(("certfile", s(p.tls_cert.display().to_string())));
        restapi.push(("keyfile", s(p.tls_key.display().to_string())));
        etcd3.push(("protocol", s("https")));
        if let Some(ca) = &ca {
            restapi.push(("cafile", ca.clone()));
            etcd3.push(("cacert", ca.clone()));
        }
    }
    let t = spec.timing;
    let mut local_params = Mapping::new();
    local_params.insert(s("unix_socket_directories"), s(p.socket_dir.display().to_string()));
    if inputs.tls.is_some() {
        local_params.insert(s("ssl_cert_file"), s(p.tls_cert.display().to_string()));
        local_params.insert(s("ssl_key_file"), s(p.tls_key.display().to_string()));
    }
    // The member listens on its own address, and on localhost for the DBA's tools on its machine.
    let is_loopback = m.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let listen = if is_loopback { pg.clone() } else { format!("{},127.0.0.1:{}", url_host(&m.host), spec.pg_port) };
    let doc = map([
        ("scope", s(&spec.scope)),
        ("namespace", s(spec.namespace())),
        ("name", s(&m.name)),
        ("restapi", map_of(restapi)),
        ("etcd3", map_of(etcd3)),
        (
            "bootstrap",
            map([
                (
                    "dcs",
                    map([
                        ("ttl", n(t.ttl)),
                        ("loop_wait", n(t.loop_wait)),
                        ("retry_timeout", n(t.retry_timeout)),
                        ("maximum_lag_on_failover", n(1024 * 1024)),
                        ("failsafe_mode", Value::Bool(true)),
                        (
                            "postgresql",
                            map([
                                ("use_pg_rewind", Value::Bool(true)),
                                ("use_slots", Value::Bool(true)),
                                ("parameters", dcs_parameters(spec)),
                                ("pg_hba", Value::Sequence(hba_lines(spec).into_iter().map(s).collect())),
                            ]),
                        ),
                    ]),
                ),
                ("initdb", Value::Sequence(vec![map([("encoding", s("UTF8"))]), s("data-checksums")])),
                ("post_bootstrap", s(p.post_bootstrap.display().to_string())),
            ]),
        ),
        (
            "postgresql",
            map([
                ("listen", s(listen)),
                ("connect_address", s(&pg)),
                ("data_dir", s(p.data_dir.display().to_string())),
                ("bin_dir", s(spec.bin_dir.display().to_string())),
                ("pgpass", s(p.pgpass.display().to_string())),
                (
                    "authentication",
                    map([
                        ("superuser", map([("username", s(&spec.superuser))])),
                        ("replication", map([("username", s(&spec.replicator))])),
                        ("rewind", map([("username", s(&spec.rewinder))])),
                    ]),
                ),
                ("parameters", Value::Mapping(local_params)),
                ("basebackup", Value::Sequence(vec![map([("checkpoint", s("fast"))])])),
            ]),
        ),
        (
            "tags",
            map([
                ("nofailover", Value::Bool(false)),
                ("noloadbalance", Value::Bool(false)),
                ("clonefrom", Value::Bool(false)),
                ("nosync", Value::Bool(false)),
            ]),
        ),
    ]);
    let yaml = yaml11_safe(&serde_yaml_ng::to_string(&doc).map_err(|e| HaError::Spec { reason: e.to_string() })?);
    let header = format!(
        "# Patroni member {} of cluster {} (Qlik Sense repository, PostgreSQL {}), written by qrd ha init.\n\
         # Credentials come from {} (PATRONI_* variables), never from this file.\n\
         # The bootstrap section counts only when the cluster is first made; change shared settings later\n\
         # with `qrd ha set-param`, which edits the DCS and restarts members in a safe order.\n\
         {}{}:{}\n{}http://{}:{}\n{}{}\n",
        m.name,
        spec.scope,
        spec.major,
        p.env.display(),
        crate::status::ENDPOINT_MARK,
        url_host(&spec.endpoint.0),
        spec.endpoint.1,
        crate::status::STATS_MARK,
        url_host(&spec.endpoint.0),
        spec.stats_port,
        crate::status::MEMBERS_MARK,
        spec.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(","),
    );
    Ok(format!("{header}{yaml}").into_bytes())
}

/// Quotes the bare scalars YAML 1.1 reads as booleans (`on`, `off`, `yes`, `no` …): serde_yaml_ng writes
/// YAML 1.2, where they are strings, but Patroni reads with PyYAML (1.1), which would turn `ssl: on` into
/// `True` (and postgresql.conf into `ssl = 'True'`).
fn yaml11_safe(yaml: &str) -> String {
    const BOOLISH: [&str; 16] =
        ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"];
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.lines() {
        let quoted = BOOLISH.iter().find_map(|b| {
            line.strip_suffix(b)
                .filter(|head| head.ends_with(": ") || head.trim_start() == "- ")
                .map(|head| format!("{head}'{b}'"))
        });
        out.push_str(quoted.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn post_bootstrap(spec: &ClusterSpec, m: &Member) -> Vec<u8> {
    let p = spec.member_paths(m);
    let psql = spec.bin_dir.join("psql");
    format!(
        "#!/bin/sh\n\
         # Patroni runs this once, on the member that makes the cluster, with the superuser's connection URL\n\
         # as $1 and its password file in PGPASSFILE; a failure cancels the bootstrap. It creates the Qlik\n\
         # repository role, the four databases and the guide's grants (qrd provision's statements).\n\
         set -eu\n\
         exec {} \"$1\" -X -q -v ON_ERROR_STOP=1 -o /dev/null -f {}\n",
        qrd_pgbin::shell_quote(&psql.display().to_string()),
        qrd_pgbin::shell_quote(&p.bootstrap_sql.display().to_string()),
    )
    .into_bytes()
}

fn dropin_text(spec: &ClusterSpec, m: &Member) -> Vec<u8> {
    let p = spec.member_paths(m);
    format!(
        "# qrd ha init: member {} of {}. Debian's patroni@.service reads /etc/patroni/env.conf only; this adds\n\
         # the cluster's own credentials. Enable with: systemctl daemon-reload && systemctl enable --now patroni@{}\n\
         [Service]\n\
         EnvironmentFile={}\n",
        m.name,
        spec.scope,
        spec.instance(),
        p.env.display()
    )
    .into_bytes()
}

fn etcd_env(spec: &ClusterSpec, e: &crate::spec::EtcdMember) -> String {
    let (_, data) = spec.etcd_paths(e);
    let scheme = spec.scheme();
    let loopback = e.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let client = e.client_url(scheme);
    let listen_client =
        if loopback { client.clone() } else { format!("{client},{scheme}://127.0.0.1:{}", e.client_port) };
    let cluster: Vec<String> = spec.etcd.iter().map(|x| format!("{}={}", x.name, x.peer_url())).collect();
    let tls = match spec.tls {
        crate::spec::Tls::Off => "# No certificate (--no-tls): clients reach etcd in the clear.\n".to_owned(),
        _ => {
            let (cert, key) = spec.etcd_tls_paths(e);
            // No ETCD_TRUSTED_CA_FILE: given one, etcd demands a client certificate of every client, and
            // the members' certificate is a server certificate (etcd refuses it as a client's).
            format!(
                "# Clients (Patroni, vip-manager, qrd) reach etcd over HTTPS only, and verify this certificate\n\
                 # against the cluster's CA.\n\
                 ETCD_CERT_FILE=\"{}\"\nETCD_KEY_FILE=\"{}\"\n",
                cert.display(),
                key.display()
            )
        }
    };
    format!(
        "# etcd member {name} for Patroni cluster {scope}, written by qrd ha init (Debian's etcd.service reads\n\
         # /etc/default/etcd). Peers talk plain HTTP: keep etcd on the cluster's private network. Three\n\
         # members survive the loss of one; with one, etcd is a single point of failure (Patroni's\n\
         # failsafe_mode keeps the leader writing while it reaches every member).\n\
         ETCD_NAME=\"{name}\"\n\
         ETCD_DATA_DIR=\"{data}\"\n\
         ETCD_LISTEN_CLIENT_URLS=\"{listen_client}\"\n\
         ETCD_ADVERTISE_CLIENT_URLS=\"{client}\"\n\
         ETCD_LISTEN_PEER_URLS=\"{peer}\"\n\
         ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{peer}\"\n\
         ETCD_INITIAL_CLUSTER=\"{cluster}\"\n\
         ETCD_INITIAL_CLUSTER_STATE=\"new\"\n\
         ETCD_INITIAL_CLUSTER_TOKEN=\"{scope}\"\n\
         {tls}",
        name = e.name,
        scope = spec.scope,
        data = data.display(),
        peer = e.peer_url(),
        cluster = cluster.join(","),
    )
}

/// HAProxy: the Qlik nodes' one Host. Writes go to the member whose REST API answers 200 on `/primary`
/// (the leader only); a member that stops being leader is marked down within two seconds and its sessions
/// are cut, so clients reconnect to the new one.
pub fn haproxy_cfg(spec: &ClusterSpec) -> String {
    let (host, port) = &spec.endpoint;
    let bind_host = url_host(host);
    let mut out = format!(
        "# HAProxy for Patroni cluster {scope}, written by qrd ha init. The Qlik nodes' repository connection\n\
         # strings and appsettings.json name this endpoint: Host={host}, Port={port}.\n\
         global\n    maxconn 2000\n\n\
         defaults\n    mode tcp\n    retries 2\n    timeout connect 4s\n\
         \x20   # The repository services keep pooled connections open for hours.\n\
         \x20   timeout client 12h\n    timeout server 12h\n    timeout check 3s\n    option clitcpka\n\n\
         listen stats\n    mode http\n    bind {bind_host}:{stats}\n    stats enable\n    stats uri /\n\n\
         listen {scope}\n    bind {bind_host}:{port}\n    option httpchk GET /primary\n    http-check expect status 200\n\
         \x20   # Checked every second, every 250 ms while a member changes state or is down: a new leader is\n\
         \x20   # UP within a quarter second of answering /primary; an old one DOWN after two failed checks, or\n\
         \x20   # at once when a connection to it is refused (its PostgreSQL stopped), instead of retrying it.\n\
         \x20   default-server inter 1s fastinter 250ms downinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions\n\
         \x20   default-server observe layer4 error-limit 1 on-error mark-down\n",
        scope = spec.scope,
        stats = spec.stats_port,
    );
    if spec.tls != crate::spec::Tls::Off {
        // The REST API speaks HTTPS only: the check too, believing a certificate the cluster's CA signed.
        out.push_str(&format!(
            "    default-server check-ssl verify required ca-file {}\n",
            spec.haproxy_ca_path().display()
        ));
    }
    if let Some(src) = spec.haproxy_source {
        out.push_str(&format!("    source {src}\n"));
    }
    for m in &spec.members {
        out.push_str(&format!(
            "    server {} {}:{} maxconn {} check port {}\n",
            m.name,
            url_host(&m.host),
            spec.pg_port,
            spec.max_connections(),
            spec.api_port
        ));
    }
    out
}

fn vip_yml(spec: &ClusterSpec, m: &Member, vip: &crate::spec::Vip) -> Result<Vec<u8>, HaError> {
    let (ip, prefix) = vip
        .address
        .split_once('/')
        .ok_or_else(|| HaError::Spec { reason: format!("VIP {:?} is not ADDR/PREFIX", vip.address) })?;
    let endpoints: Vec<Value> = spec.etcd.iter().map(|e| s(e.client_url(spec.scheme()))).collect();
    let mut pairs = vec![
        ("ip", s(ip)),
        ("netmask", s(prefix)),
        ("interface", s(&vip.interface)),
        ("trigger-key", s(format!("{}{}/leader", spec.namespace(), spec.scope))),
        ("trigger-value", s(&m.name)),
        ("dcs-type", s("etcd")),
        ("dcs-endpoints", Value::Sequence(endpoints)),
        ("interval", n(1000)),
    ];
    if spec.tls != crate::spec::Tls::Off {
        pairs.push(("etcd-ca-file", s(spec.member_paths(m).tls_ca.display().to_string())));
    }
    let doc = map_of(pairs);
    let yaml = yaml11_safe(&serde_yaml_ng::to_string(&doc).map_err(|e| HaError::Spec { reason: e.to_string() })?);
    Ok(format!(
        "# vip-manager on member {}: holds {} while this member leads (qrd ha init).\n{yaml}",
        m.name, vip.address
    )
    .into_bytes())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::tests::lab;

    fn inputs_for<'a>(secrets: &'a Secrets, v: &'a Secret, tls: &'a TlsMaterial) -> Inputs<'a> {
        Inputs { secrets, repo_verifier: v, tls: Some(tls) }
    }

    fn secrets() -> Secrets {
        Secrets {
            superuser: Secret::new("su-pw".to_string()),
            replication: Secret::new("repl-pw".to_string()),
            rewind: Secret::new("rew-pw".to_string()),
            restapi: Secret::new("api-pw".to_string()),
        }
    }

    #[test]
    fn no_secret_outside_the_secret_files() {
        let spec = lab();
        let s = secrets();
        let v = Secret::new("SCRAM-SHA-256$4096:c2FsdA==$a:b".to_string());
        let tls = TlsMaterial {
            cert_pem: "CERT".into(),
            key_pem: Secret::new("PRIVATE-KEY-PEM".to_string()),
            ca_pem: Some("CA".into()),
        };
        let files = render(&spec, &inputs_for(&s, &v, &tls)).unwrap();
        for f in &files {
            let text = String::from_utf8_lossy(&f.contents);
            for secret in ["su-pw", "repl-pw", "rew-pw", "api-pw", "SCRAM-SHA-256$", "PRIVATE-KEY-PEM"] {
                if text.contains(secret) {
                    assert!(f.secret && f.mode == 0o600, "{secret} in {} ({:o})", f.path.display(), f.mode);
                }
            }
        }
        let machines: Vec<&str> = files.iter().map(|f| f.machine.as_str()).collect();
        assert!(machines.contains(&"pg3") && machines.contains(&"etcd-e1") && machines.contains(&"haproxy"));
        // etcd's copy of the key is etcd's (Debian runs it as etcd); HAProxy gets the CA for its checks.
        let key = files.iter().find(|f| f.path == Path::new("/etc/etcd/qrd/server.key")).unwrap();
        assert_eq!((key.mode, key.secret, key.user.as_deref()), (0o600, true, Some("etcd")));
        assert!(files.iter().any(|f| f.machine == "haproxy" && f.path == Path::new("/etc/haproxy/qrd-cluster-ca.crt")));
    }

    #[test]
    fn rest_api_and_etcd_speak_https_with_a_certificate() {
        let spec = lab();
        let s = secrets();
        let v = Secret::new("SCRAM-SHA-256$4096:c2FsdA==$a:b".to_string());
        let tls = TlsMaterial { cert_pem: "C".into(), key_pem: Secret::new("K".to_string()), ca_pem: Some("A".into()) };
        let yml = String::from_utf8(patroni_yml(&spec, &spec.members[0], &inputs_for(&s, &v, &tls)).unwrap()).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&yml).unwrap();
        assert_eq!(doc["restapi"]["certfile"], s_("/etc/patroni/tls/15-qlik-repository.crt"));
        assert_eq!(doc["restapi"]["keyfile"], s_("/etc/patroni/tls/15-qlik-repository.key"));
        assert_eq!(doc["restapi"]["cafile"], s_("/etc/patroni/tls/15-qlik-repository-ca.crt"));
        assert_eq!(doc["etcd3"]["protocol"], s_("https"));
        assert_eq!(doc["etcd3"]["cacert"], s_("/etc/patroni/tls/15-qlik-repository-ca.crt"));
        assert!(yml.contains("\n# qrd-members: pg1,pg2,pg3\n"), "{yml}");
        let etcd = etcd_env(&spec, &spec.etcd[0]);
        assert!(etcd.contains("ETCD_ADVERTISE_CLIENT_URLS=\"https://10.0.4.2:2379\""), "{etcd}");
        assert!(etcd.contains("ETCD_LISTEN_CLIENT_URLS=\"https://10.0.4.2:2379,https://127.0.0.1:2379\""), "{etcd}");
        assert!(etcd.contains("ETCD_CERT_FILE=\"/etc/etcd/qrd/server.crt\""), "{etcd}");
        // A trusted CA would make etcd demand client certificates, which a server certificate is not.
        assert!(!etcd.contains("ETCD_TRUSTED_CA_FILE"), "{etcd}");
        let cfg = haproxy_cfg(&spec);
        assert!(cfg.contains("default-server check-ssl verify required ca-file /etc/haproxy/qrd-cluster-ca.crt"));

        // --no-tls: plain HTTP everywhere, no certificate named.
        let mut spec = lab();
        spec.tls = crate::spec::Tls::Off;
        let inputs = Inputs { secrets: &s, repo_verifier: &v, tls: None };
        let yml = String::from_utf8(patroni_yml(&spec, &spec.members[0], &inputs).unwrap()).unwrap();
        assert!(!yml.contains("certfile") && !yml.contains("protocol"), "{yml}");
        assert!(etcd_env(&spec, &spec.etcd[0]).contains("ETCD_ADVERTISE_CLIENT_URLS=\"http://10.0.4.2:2379\""));
        assert!(!haproxy_cfg(&spec).contains("check-ssl"));
    }

    #[test]
    fn patroni_yml_has_what_the_issue_measured() {
        let spec = lab();
        let s = secrets();
        let v = Secret::new("SCRAM-SHA-256$4096:c2FsdA==$a:b".to_string());
        let tls = TlsMaterial { cert_pem: "C".into(), key_pem: Secret::new("K".to_string()), ca_pem: None };
        let yml = String::from_utf8(patroni_yml(&spec, &spec.members[0], &inputs_for(&s, &v, &tls)).unwrap()).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&yml).unwrap();
        assert_eq!(doc["etcd3"]["hosts"][0], s_("10.0.4.2:2379"));
        assert_eq!(doc["bootstrap"]["dcs"]["failsafe_mode"], Value::Bool(true));
        assert_eq!(doc["postgresql"]["basebackup"][0]["checkpoint"], s_("fast"));
        assert_eq!(doc["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_connections"], Value::Number(330.into()));
        assert_eq!(doc["bootstrap"]["dcs"]["postgresql"]["parameters"]["wal_keep_size"], s_("1GB"));
        assert_eq!(doc["postgresql"]["listen"], s_("10.0.4.11,127.0.0.1:4432"));
        assert!(yml.contains("ssl: 'on'") && yml.contains("hot_standby: 'on'"), "{yml}");
        assert_eq!(yaml11_safe("a: on\n- off\nb: nonon\nc: 'on'\n"), "a: 'on'\n- 'off'\nb: nonon\nc: 'on'\n");
        let hba = hba_lines(&spec);
        assert!(
            hba.contains(
                &"hostssl QSR,SenseServices,QSMQ,Licenses qliksenserepository 10.0.5.0/24 scram-sha-256".to_owned()
            ),
            "{hba:#?}"
        );
        assert!(hba.contains(&"hostssl replication replicator 10.0.4.12/32 scram-sha-256".to_owned()), "{hba:#?}");
        assert!(
            hba.contains(
                &"hostssl QSR,SenseServices,QSMQ,Licenses qliksenserepository 10.0.4.3/32 scram-sha-256".to_owned()
            ),
            "{hba:#?}"
        );
        // The superuser from HAProxy (the DBA's qrd through the endpoint), never from the Qlik nodes.
        assert!(hba.contains(&"hostssl all postgres 10.0.4.3/32 scram-sha-256".to_owned()), "{hba:#?}");
        assert!(!hba.iter().any(|l| l.contains("postgres 10.0.5.0/24")), "{hba:#?}");
    }

    fn s_(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn pg12_keeps_wal_by_segments() {
        let mut spec = lab();
        spec.major = 12;
        let p = dcs_parameters(&spec);
        assert_eq!(p["wal_keep_segments"], Value::Number(64.into()));
        assert!(p.get("wal_keep_size").is_none());
    }

    #[test]
    fn haproxy_checks_the_leader_on_the_rest_api() {
        let mut spec = lab();
        spec.haproxy_source = Some("10.0.4.3".parse().unwrap());
        let cfg = haproxy_cfg(&spec);
        assert!(cfg.contains("option httpchk GET /primary"));
        assert!(cfg.contains("server pg2 10.0.4.12:4432 maxconn 330 check port 8008"));
        assert!(cfg.contains("source 10.0.4.3"));
    }
}
