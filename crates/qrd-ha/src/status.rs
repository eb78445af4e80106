//! `qrd ha status`: the cluster as Patroni (`/cluster`, `/config`), etcd (`/health`) and HAProxy (its
//! statistics) report it, and how qrd reaches them ([`ClusterRef`], read from a member's `patroni.yml`).

use std::path::{Path, PathBuf};

use qrd_pg::password::Secret;
use serde::Serialize;
use serde_json::Value;

use crate::HaError;
use crate::api::{self, Api, Backend};
use crate::envfile::{self, EnvFile};

/// How to reach a cluster: its members' REST APIs, its etcd, HAProxy's statistics and the endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClusterRef {
    /// Patroni's scope, from the YAML.
    pub scope: Option<String>,
    pub api_urls: Vec<String>,
    pub etcd_urls: Vec<String>,
    pub haproxy_stats: Option<String>,
    /// `host:port` the Qlik nodes connect to.
    pub endpoint: Option<String>,
    pub api_password: Option<Secret>,
}

/// Lines `qrd ha init` writes in the header of each `patroni.yml` for itself (comments to Patroni).
pub const ENDPOINT_MARK: &str = "# qrd-endpoint: ";
pub const STATS_MARK: &str = "# qrd-haproxy-stats: ";

impl ClusterRef {
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
        let etcd_urls = match &doc["etcd3"]["hosts"] {
            serde_yaml_ng::Value::Sequence(s) => {
                s.iter().filter_map(|h| h.as_str()).map(|h| format!("http://{h}")).collect()
            }
            serde_yaml_ng::Value::String(s) => s.split(',').map(|h| format!("http://{}", h.trim())).collect(),
            _ => Vec::new(),
        };
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
            etcd_urls,
            haproxy_stats: mark(STATS_MARK),
            endpoint: mark(ENDPOINT_MARK),
            api_password: env.as_ref().and_then(|e| e.get(envfile::RESTAPI)).map(|p| Secret::new(p.to_owned())),
        })
    }

    pub fn api(&self) -> Api {
        Api::new(self.api_urls.clone(), self.api_password.clone().map(|p| (crate::spec::API_USER.to_owned(), p)))
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
    Ok(ClusterStatus {
        scope: cluster.scope.clone().or_else(|| cref.scope.clone()),
        leader: cluster.leader().map(|m| m.name.clone()),
        members,
        failsafe_mode: config["failsafe_mode"].as_bool().unwrap_or(false),
        ttl: config["ttl"].as_u64(),
        loop_wait: config["loop_wait"].as_u64(),
        retry_timeout: config["retry_timeout"].as_u64(),
        parameters: pg["parameters"].as_object().cloned().unwrap_or_default(),
        pg_hba: pg["pg_hba"]
            .as_array()
            .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        etcd: api::etcd_health(&cref.etcd_urls)
            .into_iter()
            .map(|(url, healthy, detail)| EtcdHealth { url, healthy, detail })
            .collect(),
        haproxy: cref.haproxy_stats.as_deref().map(|u| api::haproxy_backends(u).map_err(|e| e.to_string())),
        endpoint: cref.endpoint.clone(),
    })
}
