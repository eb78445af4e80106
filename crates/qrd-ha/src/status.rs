//! `qrd ha status`: the cluster as Patroni (`/cluster`, `/config`), etcd (`/health`) and HAProxy (its
//! statistics) report it, and how qrd reaches them ([`ClusterRef`], read from a member's `patroni.yml`).

use std::path::{Path, PathBuf};

use qrd_pg::password::Secret;
use serde::Serialize;
use serde_json::Value;

use crate::HaError;
use crate::api::{self, Api, Backend, Trust};
use crate::envfile::{self, EnvFile};

/// How to reach a cluster: its members' REST APIs, its etcd, HAProxy's statistics and the endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClusterRef {
    /// Patroni's scope, from the YAML.
    pub scope: Option<String>,
    pub api_urls: Vec<String>,
    /// The certificates the REST API may present (`restapi.cafile`).
    pub api_trust: Trust,
    pub etcd_urls: Vec<String>,
    /// The certificates etcd may present (`etcd3.cacert`).
    pub etcd_trust: Trust,
    pub haproxy_stats: Option<String>,
    /// `host:port` the Qlik nodes connect to.
    pub endpoint: Option<String>,
    /// Every member `qrd ha init` named: the cluster is whole only when each is in Patroni's `/cluster`.
    pub members: Vec<String>,
    pub api_password: Option<Secret>,
}

/// Lines `qrd ha init` writes in the header of each `patroni.yml` for itself (comments to Patroni).
pub const ENDPOINT_MARK: &str = "# qrd-endpoint: ";
pub const STATS_MARK: &str = "# qrd-haproxy-stats: ";
pub const MEMBERS_MARK: &str = "# qrd-members: ";

impl ClusterRef {
    /// What `qrd ha`'s cluster options name: a member's patroni.yml (`config`, with its `env_file`), which
    /// may be unreadable when `api` URLs are given; then `api`, `haproxy_stats` and `api_ca` override what
    /// it says, and the REST API password comes from `QRD_PATRONI_API_PASSWORD` when that is set.
    pub fn resolve(
        config: &Path,
        env_file: Option<&Path>,
        api: &[String],
        haproxy_stats: Option<&str>,
        api_ca: Option<&Path>,
    ) -> Result<ClusterRef, HaError> {
        let mut cref = match ClusterRef::from_config(config, env_file) {
            Ok(c) => c,
            Err(e) if !api.is_empty() => {
                tracing::debug!("{e}; using --api");
                ClusterRef::default()
            }
            Err(e) => return Err(e),
        };
        if !api.is_empty() {
            cref.api_urls = api.to_vec();
        }
        if let Some(s) = haproxy_stats {
            cref.haproxy_stats = Some(s.to_owned());
        }
        if let Some(ca) = api_ca {
            cref.api_trust = Trust::ca_file(ca).map_err(|e| HaError::Usage(format!("--api-ca: {e}")))?;
        }
        let var = qrd_auth::source::PATRONI_API_PASSWORD_ENV;
        match qrd_pg::password::from_env(var) {
            Ok(Some(pw)) => cref.api_password = Some(pw),
            Ok(None) => {}
            Err(source) => {
                let alternatives = format!("set {var}, or pass --env-file with a member's env file");
                return Err(qrd_auth::AuthError::Password { source, alternatives }.into());
            }
        }
        Ok(cref)
    }

    /// The endpoint as host and port (the port 4432 when it names none).
    pub fn endpoint_host_port(&self) -> Option<(String, u16)> {
        self.endpoint.as_deref().and_then(|e| crate::spec::parse_endpoint(e).ok())
    }

    /// From a member's `patroni.yml`: its REST API, the etcd hosts, and qrd's own header lines; the REST
    /// API password from `env_file`, else the `.env` (or `patroni.env`) beside the YAML when readable.
    pub fn from_config(config: &Path, env_file: Option<&Path>) -> Result<ClusterRef, HaError> {
        let no = |reason: String| HaError::NoConfig { path: config.to_owned(), reason };
        let text = std::fs::read_to_string(config).map_err(|e| no(e.to_string()))?;
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| no(format!("not YAML: {e}")))?;
        let scheme = if doc["restapi"]["certfile"].is_string() { "https" } else { "http" };
        let api = doc["restapi"]["connect_address"]
            .as_str()
            .ok_or_else(|| no("it has no restapi.connect_address: is it a Patroni configuration?".into()))?;
        let etcd = &doc["etcd3"];
        let etcd_scheme = etcd["protocol"].as_str().unwrap_or("http");
        let etcd_urls = match &etcd["hosts"] {
            serde_yaml_ng::Value::Sequence(s) => {
                s.iter().filter_map(|h| h.as_str()).map(|h| format!("{etcd_scheme}://{h}")).collect()
            }
            serde_yaml_ng::Value::String(s) => s.split(',').map(|h| format!("{etcd_scheme}://{}", h.trim())).collect(),
            _ => Vec::new(),
        };
        // The CAs Patroni verifies with, which qrd believes too.
        let trust = |ca: &serde_yaml_ng::Value, key: &str| match ca.as_str() {
            Some(path) => Trust::ca_file(Path::new(path)).map_err(|e| no(format!("its {key}: {e}"))),
            None => Ok(Trust::system()),
        };
        let api_trust = trust(&doc["restapi"]["cafile"], "restapi.cafile")?;
        let etcd_trust = trust(&etcd["cacert"], "etcd3.cacert")?;
        let mark = |m: &str| text.lines().find_map(|l| l.strip_prefix(m)).map(|v| v.trim().to_owned());
        let default_env: PathBuf = if config.file_name().is_some_and(|n| n == "patroni.yml") {
            config.with_file_name("patroni.env")
        } else {
            config.with_extension("env")
        };
        let env_path = env_file.map(Path::to_path_buf).unwrap_or(default_env);
        let env = match EnvFile::read(&env_path) {
            Ok(e) => e,
            // Not ours to read (another user's 0600 file): the password may still come from elsewhere.
            Err(_) if env_file.is_none() => None,
            Err(e) => return Err(e),
        };
        Ok(ClusterRef {
            scope: doc["scope"].as_str().map(str::to_owned),
            api_urls: vec![format!("{scheme}://{api}")],
            api_trust,
            etcd_urls,
            etcd_trust,
            haproxy_stats: mark(STATS_MARK),
            endpoint: mark(ENDPOINT_MARK),
            members: mark(MEMBERS_MARK)
                .map(|m| m.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect())
                .unwrap_or_default(),
            api_password: env.as_ref().and_then(|e| e.get(envfile::RESTAPI)).map(|p| Secret::new(p.to_owned())),
        })
    }

    pub fn api(&self) -> Api {
        Api::new(
            self.api_urls.clone(),
            self.api_password.clone().map(|p| (crate::spec::API_USER.to_owned(), p)),
            self.api_trust.clone(),
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub name: String,
    pub role: String,
    pub state: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub timeline: Option<u64>,
    /// Bytes of WAL behind the leader (replicas).
    pub lag_bytes: Option<u64>,
    /// The leader's pg_stat_replication shows it streaming (replicas; `None` when the leader was not asked).
    pub streaming: Option<bool>,
    pub pending_restart: bool,
}

/// A member the cluster should have (`qrd ha init` named it, or HAProxy lists it) that Patroni's `/cluster`
/// does not: its lease ran out, so Patroni no longer runs there (stopped, crashed, or its machine is down).
#[derive(Debug, Clone, Serialize)]
pub struct MissingMember {
    pub name: String,
    /// HAProxy's last word on it (`DOWN` …), when HAProxy lists it.
    pub haproxy: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EtcdHealth {
    pub url: String,
    pub healthy: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub scope: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberStatus>,
    /// The members the cluster should have: the ones `qrd ha init` named, and HAProxy's servers (empty
    /// when neither is known).
    pub expected: Vec<String>,
    /// Expected members that Patroni's `/cluster` does not list.
    pub missing: Vec<MissingMember>,
    pub failsafe_mode: bool,
    pub ttl: Option<u64>,
    pub loop_wait: Option<u64>,
    pub retry_timeout: Option<u64>,
    /// Settings Patroni applies to every member (the DCS's `postgresql.parameters`).
    pub parameters: serde_json::Map<String, Value>,
    /// The DCS's pg_hba lines.
    pub pg_hba: Vec<String>,
    pub etcd: Vec<EtcdHealth>,
    /// HAProxy's servers, or why they could not be read.
    pub haproxy: Option<Result<Vec<Backend>, String>>,
    pub endpoint: Option<String>,
}

impl ClusterStatus {
    /// etcd has quorum: a majority of the members qrd knows answers healthy.
    pub fn etcd_quorum(&self) -> bool {
        let healthy = self.etcd.iter().filter(|e| e.healthy).count();
        !self.etcd.is_empty() && healthy * 2 > self.etcd.len()
    }
}

pub fn status(cref: &ClusterRef) -> Result<ClusterStatus, HaError> {
    let api = cref.api();
    let cluster = api.cluster()?;
    let config = api.config()?;
    let streaming = api.streaming_members(&cluster).ok().flatten();
    let members = cluster
        .members
        .iter()
        .map(|m| MemberStatus {
            name: m.name.clone(),
            role: m.role.clone(),
            state: m.state.clone(),
            host: m.host.clone(),
            port: m.port,
            timeline: m.timeline,
            lag_bytes: if m.is_leader() { None } else { m.lag_bytes() },
            streaming: if m.is_leader() { None } else { streaming.as_ref().map(|s| s.contains(&m.name)) },
            pending_restart: m.pending_restart.unwrap_or(false),
        })
        .collect();
    let pg = &config["postgresql"];
    let scope = cluster.scope.clone().or_else(|| cref.scope.clone());
    let haproxy = cref.haproxy_stats.as_deref().map(|u| api::haproxy_backends(u).map_err(|e| e.to_string()));
    // HAProxy's servers of this cluster (its `listen` section is named after the scope).
    let servers: Vec<&Backend> = match &haproxy {
        Some(Ok(b)) => b.iter().filter(|b| scope.as_ref().is_none_or(|s| *s == b.proxy)).collect(),
        _ => Vec::new(),
    };
    let mut expected = cref.members.clone();
    for b in &servers {
        if !expected.contains(&b.server) {
            expected.push(b.server.clone());
        }
    }
    let missing = expected
        .iter()
        .filter(|n| !cluster.members.iter().any(|m| m.name == **n))
        .map(|n| MissingMember {
            name: n.clone(),
            haproxy: servers.iter().find(|b| b.server == *n).map(|b| b.status.clone()),
        })
        .collect();
    Ok(ClusterStatus {
        scope,
        leader: cluster.leader().map(|m| m.name.clone()),
        members,
        expected,
        missing,
        failsafe_mode: config["failsafe_mode"].as_bool().unwrap_or(false),
        ttl: config["ttl"].as_u64(),
        loop_wait: config["loop_wait"].as_u64(),
        retry_timeout: config["retry_timeout"].as_u64(),
        parameters: pg["parameters"].as_object().cloned().unwrap_or_default(),
        pg_hba: pg["pg_hba"]
            .as_array()
            .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        etcd: api::etcd_health(&cref.etcd_urls, &cref.etcd_trust)
            .into_iter()
            .map(|(url, healthy, detail)| EtcdHealth { url, healthy, detail })
            .collect(),
        haproxy,
        endpoint: cref.endpoint.clone(),
    })
}
