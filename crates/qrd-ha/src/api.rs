//! Patroni's REST API, etcd's health endpoint and HAProxy's statistics, over HTTP(S). qrd reads Patroni's
//! JSON (`/cluster`, `/config`, `/patroni`), never patronictl's tables. Requests that change something
//! carry the REST API user's password (basic authentication), which never appears in a URL, a log line or
//! an error. An HTTPS server is believed only when the cluster's CA (or the system's roots) vouches for
//! its certificate and the name in the URL: there is no "accept any certificate".

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use qrd_pg::password::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::HaError;

/// Which HTTPS servers qrd believes: those whose certificate the cluster's CA signed (the `cafile` qrd ha
/// init writes beside each member's certificate), else those the system's roots vouch for.
#[derive(Clone, Default)]
pub struct Trust {
    /// The CA file and its certificates (DER).
    ca: Option<(PathBuf, Vec<Vec<u8>>)>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ca {
            Some((path, certs)) => write!(f, "Trust({}, {} certificate(s))", path.display(), certs.len()),
            None => f.write_str("Trust(the system's roots)"),
        }
    }
}

impl Trust {
    /// The system's roots (a certificate from a public or a site-wide CA the system trusts).
    pub fn system() -> Trust {
        Trust::default()
    }

    /// The certificates of a PEM file (a CA, or a bundle of them).
    pub fn ca_file(path: &Path) -> Result<Trust, HaError> {
        let pem = std::fs::read(path).map_err(|e| HaError::io("read the CA file", path, e))?;
        let certs: Vec<Vec<u8>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c.der().to_vec()),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(HaError::io(
                "read a PEM certificate from",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "it holds none"),
            ));
        }
        Ok(Trust { ca: Some((path.to_owned(), certs)) })
    }

    /// The CA file, when one was given.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(p, _)| p.as_path())
    }

    fn tls_config(&self) -> TlsConfig {
        let roots = match &self.ca {
            Some((_, certs)) => {
                let certs: Vec<Certificate<'static>> =
                    certs.iter().map(|d| Certificate::from_der(d).to_owned()).collect();
                RootCerts::new_with_certs(&certs)
            }
            None => RootCerts::PlatformVerifier,
        };
        TlsConfig::builder().provider(TlsProvider::NativeTls).root_certs(roots).build()
    }
}

/// A REST API client for one cluster: the members' API URLs, tried in turn.
#[derive(Clone)]
pub struct Api {
    urls: Vec<String>,
    auth: Option<(String, Secret)>,
    trust: Trust,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("urls", &self.urls)
            .field("auth", &self.auth.as_ref().map(|a| &a.0))
            .field("trust", &self.trust)
            .finish()
    }
}

fn agent(timeout: Duration, trust: &Trust) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(timeout))
        .tls_config(trust.tls_config())
        // Patroni answers 503 on /primary for a replica: a status is an answer, not an error.
        .http_status_as_error(false)
        .build()
        .into()
}

/// One answer: the status and the body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self, url: &str) -> Result<Value, HaError> {
        serde_json::from_str(&self.body)
            .map_err(|e| HaError::Api { url: url.to_owned(), message: format!("not JSON: {e}") })
    }
}

/// A plain GET with a short timeout (etcd's /health, HAProxy's CSV, a member's /primary); an HTTPS server
/// must present a certificate `trust` vouches for.
pub fn get(url: &str, trust: &Trust) -> Result<Reply, HaError> {
    request(&agent(Duration::from_secs(5), trust), "GET", url, None, None)
}

fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
    auth: Option<&(String, Secret)>,
) -> Result<Reply, HaError> {
    let err = |e: ureq::Error| HaError::Api { url: url.to_owned(), message: e.to_string() };
    let header = auth.map(|(u, p)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.expose()));
        format!("Basic {token}")
    });
    let mut response = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(h) = &header {
                r = r.header("Authorization", h);
            }
            r.call().map_err(err)?
        }
        (m, b) => {
            let mut r = match m {
                "POST" => agent.post(url),
                "PATCH" => agent.patch(url),
                _ => agent.put(url),
            };
            if let Some(h) = &header {
                r = r.header("Authorization", h);
            }
            match b {
                Some(b) => r.send_json(b).map_err(err)?,
                None => r.send_empty().map_err(err)?,
            }
        }
    };
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().map_err(err)?;
    Ok(Reply { status, body })
}

/// A member as `/cluster` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterMember {
    pub name: String,
    /// `leader`, `replica`, `sync_standby`, `standby_leader`.
    pub role: String,
    /// `running`, `streaming`, `starting`, `stopped`, `crashed`, `creating replica` …
    pub state: String,
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub timeline: Option<u64>,
    /// Bytes behind the leader (`"unknown"` when Patroni cannot tell).
    #[serde(default)]
    pub lag: Option<Value>,
    #[serde(default)]
    pub pending_restart: Option<bool>,
}

impl ClusterMember {
    pub fn is_leader(&self) -> bool {
        self.role == "leader" || self.role == "standby_leader"
    }

    /// PostgreSQL runs (Patroni 3.0 says `running`; later versions say `streaming` for a replica).
    pub fn is_running(&self) -> bool {
        self.state == "running" || self.state == "streaming"
    }

    pub fn lag_bytes(&self) -> Option<u64> {
        self.lag.as_ref().and_then(Value::as_u64)
    }
}

/// `/cluster`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub members: Vec<ClusterMember>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl Cluster {
    pub fn leader(&self) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.is_leader())
    }
}

impl Api {
    /// A client for the members at `urls` (`https://host:8008`); `auth` for requests that change
    /// something; `trust` for their certificates.
    pub fn new(urls: Vec<String>, auth: Option<(String, Secret)>, trust: Trust) -> Api {
        let agent = agent(Duration::from_secs(10), &trust);
        Api { urls, auth, trust, agent }
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// GET `path` from the first member that answers.
    pub fn get_any(&self, path: &str) -> Result<(String, Value), HaError> {
        let mut tried = Vec::new();
        for base in &self.urls {
            let url = format!("{}{path}", base.trim_end_matches('/'));
            match request(&self.agent, "GET", &url, None, None) {
                Ok(r) if r.status == 200 => return Ok((base.clone(), r.json(&url)?)),
                Ok(r) => tried.push(format!("{url}: HTTP {}", r.status)),
                Err(e) => tried.push(e.to_string()),
            }
        }
        Err(HaError::NoApi { tried: tried.join("; ") })
    }

    /// GET `path` from one member (`base` is its API URL); `None` when it does not answer.
    pub fn get_one(&self, base: &str, path: &str) -> Result<Reply, HaError> {
        request(&self.agent, "GET", &format!("{}{path}", base.trim_end_matches('/')), None, None)
    }

    pub fn cluster(&self) -> Result<Cluster, HaError> {
        let (base, v) = self.get_any("/cluster")?;
        serde_json::from_value(v).map_err(|e| HaError::Api { url: format!("{base}/cluster"), message: e.to_string() })
    }

    /// The DCS configuration (`/config`).
    pub fn config(&self) -> Result<Value, HaError> {
        Ok(self.get_any("/config")?.1)
    }

    /// A request that changes something, to one member, with the REST API password. Errors carry
    /// Patroni's answer.
    pub fn send(
        &self,
        method: &str,
        base: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Reply, HaError> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let auth = self.auth.as_ref().ok_or_else(|| HaError::Api {
            url: url.clone(),
            message: "this request needs the REST API password, and none was given".into(),
        })?;
        let r = request(&agent(timeout, &self.trust), method, &url, body, Some(auth))?;
        if r.status == 401 {
            return Err(HaError::Api { url, message: "the REST API refused the password (HTTP 401)".into() });
        }
        Ok(r)
    }

    /// The replicas streaming from the leader whose API is at `leader_url`, as its `pg_stat_replication`
    /// says through `/patroni`: `(application_name, state)`.
    pub fn streaming_from(&self, leader_url: &str) -> Result<Vec<(String, String)>, HaError> {
        let r = self.get_one(leader_url, "/patroni")?;
        let v = r.json(leader_url)?;
        Ok(v["replication"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["application_name"].as_str().unwrap_or_default().to_owned(),
                            x["state"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The leader's REST API URL, from `/cluster`.
    pub fn leader_url(&self, cluster: &Cluster) -> Option<String> {
        cluster.leader().and_then(|l| self.member_url(cluster, &l.name))
    }

    /// The members that stream from the leader: running, and `streaming` in its pg_stat_replication. A
    /// replica still being cloned shows there too, under its name (pg_basebackup's WAL stream), while it
    /// does not run yet. `None` when the cluster has no leader to ask.
    pub fn streaming_members(&self, cluster: &Cluster) -> Result<Option<Vec<String>>, HaError> {
        let Some(url) = self.leader_url(cluster) else { return Ok(None) };
        let listed = self.streaming_from(&url)?;
        Ok(Some(
            cluster
                .members
                .iter()
                .filter(|m| m.is_running() && listed.iter().any(|(n, st)| *n == m.name && st == "streaming"))
                .map(|m| m.name.clone())
                .collect(),
        ))
    }

    /// The REST API URL of a member from `/cluster` (falls back to the configured one of the same host).
    pub fn member_url(&self, cluster: &Cluster, name: &str) -> Option<String> {
        let m = cluster.members.iter().find(|m| m.name == name)?;
        m.api_url.as_ref().map(|u| u.trim_end_matches("/patroni").to_owned())
    }
}

/// etcd's `/health` on each endpoint: `(url, healthy, what it said)`.
pub fn etcd_health(endpoints: &[String], trust: &Trust) -> Vec<(String, bool, String)> {
    endpoints
        .iter()
        .map(|e| {
            let url = format!("{}/health", e.trim_end_matches('/'));
            match get(&url, trust) {
                Ok(r) => {
                    let healthy = r.status == 200
                        && serde_json::from_str::<Value>(&r.body)
                            .ok()
                            .and_then(|v| v.get("health").and_then(|h| h.as_str().map(|s| s == "true")))
                            .unwrap_or(false);
                    (e.clone(), healthy, r.body.trim().to_owned())
                }
                Err(err) => (e.clone(), false, err.to_string()),
            }
        })
        .collect()
}

/// One HAProxy server line of the statistics CSV.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Backend {
    pub proxy: String,
    pub server: String,
    /// `UP`, `DOWN`, `MAINT`, `no check` …
    pub status: String,
}

/// HAProxy's servers from its statistics page (`http://host:port/;csv`), BACKEND/FRONTEND rows left out.
/// The page is read-only and carries no credential (qrd ha init serves it over plain HTTP).
pub fn haproxy_backends(stats_url: &str) -> Result<Vec<Backend>, HaError> {
    let url = format!("{}/;csv", stats_url.trim_end_matches('/'));
    let r = get(&url, &Trust::system())?;
    if r.status != 200 {
        return Err(HaError::Api { url, message: format!("HTTP {}", r.status) });
    }
    parse_haproxy_csv(&r.body).ok_or_else(|| HaError::Api { url, message: "not HAProxy's statistics CSV".into() })
}

fn parse_haproxy_csv(text: &str) -> Option<Vec<Backend>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (p, s, st) = (col("pxname")?, col("svname")?, col("status")?);
    Some(
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > st && f[s] != "BACKEND" && f[s] != "FRONTEND")
            .map(|f| Backend { proxy: f[p].to_owned(), server: f[s].to_owned(), status: f[st].to_owned() })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_csv_servers_only() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
                   stats,FRONTEND,,,0,1,2000,1,0,0,0,0,0,,,,,OPEN,\n\
                   qlik-repository,pg1,0,0,0,1,330,2,0,0,,0,,0,0,0,0,UP,1\n\
                   qlik-repository,pg2,0,0,0,0,330,0,0,0,,0,,0,0,0,0,DOWN,1\n\
                   qlik-repository,BACKEND,0,0,0,1,200,2,0,0,0,0,,0,0,0,0,UP,1\n";
        let b = parse_haproxy_csv(csv).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1], Backend { proxy: "qlik-repository".into(), server: "pg2".into(), status: "DOWN".into() });
    }

    #[test]
    fn cluster_json_as_patroni_3_writes_it() {
        let v: Cluster = serde_json::from_str(
            r#"{"members": [{"name": "pg1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:8008/patroni", "host": "127.0.0.1", "port": 4432, "timeline": 1},
                            {"name": "pg2", "role": "replica", "state": "running", "api_url": "http://127.0.0.2:8008/patroni", "host": "127.0.0.2", "port": 4432, "timeline": 1, "lag": 0},
                            {"name": "pg3", "role": "replica", "state": "running", "host": "127.0.0.3", "port": 4432, "lag": "unknown"}], "scope": "q"}"#,
        )
        .unwrap();
        assert_eq!(v.leader().unwrap().name, "pg1");
        assert_eq!(v.members[1].lag_bytes(), Some(0));
        assert_eq!(v.members[2].lag_bytes(), None);
    }
}
