//! `qrd ha set-param NAME=VALUE…`: a change to the settings every member shares, made where Patroni keeps
//! them (the DCS, `PATCH /config`; a member's own postgresql.conf would be overwritten, and Patroni ignores
//! a member-local `max_connections`), then the restarts it needs, in a safe order.
//!
//! The order: replicas first, each back and streaming before the next, then the leader in place. Patroni
//! starts a replica with at least the primary's values of the settings a standby must match
//! (`max_connections`, `max_wal_senders`, `max_worker_processes` …, from pg_controldata), so raising them
//! on replicas first never stops one; when a value goes down, the replicas keep the old one until the
//! leader has restarted and they are restarted again, which the loop does (at most three rounds).

use std::time::{Duration, Instant};

use qrd_pgbin::{Check, WaitError, poll_until_blocking};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::HaError;
use crate::status::ClusterRef;

/// Keys of Patroni's own (top level of the DCS configuration), not PostgreSQL settings.
const PATRONI_KEYS: [&str; 6] =
    ["ttl", "loop_wait", "retry_timeout", "maximum_lag_on_failover", "failsafe_mode", "synchronous_mode"];

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub name: String,
    pub from: Option<Value>,
    pub to: Value,
    /// A Patroni setting (top level), not a PostgreSQL one.
    pub patroni: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub member: String,
    pub role: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetParamReport {
    pub changes: Vec<Change>,
    pub restarts: Vec<Restart>,
    /// Members still waiting for a restart (with `--no-restart`, or when one did not come back).
    pub pending: Vec<String>,
}

/// `NAME=VALUE` pairs, checked: a name PostgreSQL or Patroni could have, a value on one line.
pub fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, HaError> {
    pairs
        .iter()
        .map(|p| {
            let (n, v) =
                p.split_once('=').ok_or_else(|| HaError::Spec { reason: format!("{p:?} is not NAME=VALUE") })?;
            let n = n.trim();
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                return Err(HaError::Spec { reason: format!("{n:?} is not a setting name") });
            }
            if v.contains(['\n', '\r']) {
                return Err(HaError::Spec { reason: format!("the value of {n} spans several lines") });
            }
            Ok((n.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The changes against the DCS configuration `config` (nothing for values already set).
pub fn plan(config: &Value, pairs: &[(String, String)]) -> Result<Vec<Change>, HaError> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        let patroni = PATRONI_KEYS.contains(&name.as_str());
        let (from, to) = if patroni {
            let to = match (name.as_str(), value.as_str()) {
                ("failsafe_mode" | "synchronous_mode", "true" | "on") => Value::Bool(true),
                ("failsafe_mode" | "synchronous_mode", "false" | "off") => Value::Bool(false),
                ("failsafe_mode" | "synchronous_mode", v) => {
                    return Err(HaError::Spec { reason: format!("{name} is true or false, not {v:?}") });
                }
                (_, v) => Value::from(
                    v.parse::<u64>()
                        .map_err(|_| HaError::Spec { reason: format!("{name} is a whole number, not {v:?}") })?,
                ),
            };
            (config.get(name).cloned(), to)
        } else {
            if name == "max_connections" && value.parse::<u32>().is_err() {
                return Err(HaError::Spec { reason: format!("max_connections is a whole number, not {value:?}") });
            }
            (config["postgresql"]["parameters"].get(name).cloned(), Value::String(value.clone()))
        };
        let same = from.as_ref().is_some_and(|f| f == &to || f.to_string().trim_matches('"') == value.as_str());
        if !same {
            out.push(Change { name: name.clone(), from, to, patroni });
        }
    }
    Ok(out)
}

/// The PATCH body for `changes`.
pub fn patch_body(changes: &[Change]) -> Value {
    let mut top = Map::new();
    let mut params = Map::new();
    for c in changes {
        if c.patroni {
            top.insert(c.name.clone(), c.to.clone());
        } else {
            params.insert(c.name.clone(), c.to.clone());
        }
    }
    if !params.is_empty() {
        top.insert("postgresql".into(), json!({ "parameters": params }));
    }
    Value::Object(top)
}

/// `qrd ha set-param`: `pairs` (`NAME=VALUE`) planned against the DCS, and unless `dry_run` applied, with
/// the restarts they need when `restart`.
pub fn set_param(
    cref: &ClusterRef,
    pairs: &[String],
    dry_run: bool,
    restart: bool,
    wait: Duration,
) -> Result<SetParamReport, HaError> {
    let pairs = parse_pairs(pairs)?;
    let changes = plan(&cref.api().config()?, &pairs)?;
    if dry_run {
        return Ok(SetParamReport { changes, restarts: Vec::new(), pending: Vec::new() });
    }
    apply(cref, changes, restart, wait)
}

pub fn apply(
    cref: &ClusterRef,
    changes: Vec<Change>,
    restart: bool,
    wait: Duration,
) -> Result<SetParamReport, HaError> {
    let api = cref.api();
    let cluster = api.cluster()?;
    let base = api
        .leader_url(&cluster)
        .or_else(|| api.urls().first().cloned())
        .ok_or_else(|| HaError::NoApi { tried: "no REST API URL known".into() })?;
    let mut report = SetParamReport { changes, restarts: Vec::new(), pending: Vec::new() };
    if !report.changes.is_empty() {
        let r = api.send("PATCH", &base, "/config", Some(&patch_body(&report.changes)), Duration::from_secs(30))?;
        if r.status != 200 {
            return Err(HaError::Api {
                url: format!("{base}/config"),
                message: format!("HTTP {}: {}", r.status, r.body.trim()),
            });
        }
    }
    // Patroni applies the DCS change on each member's next cycle (loop_wait): a reload, and for settings
    // that need one, a pending restart. Wait until every member has seen it.
    let loop_wait = api.config()?["loop_wait"].as_u64().unwrap_or(10);
    let seen_by = Instant::now() + Duration::from_secs(loop_wait * 2 + 5);
    let needs_restart = |c: &crate::api::Cluster| -> Vec<(String, String)> {
        c.members.iter().filter(|m| m.pending_restart == Some(true)).map(|m| (m.name.clone(), m.role.clone())).collect()
    };
    let pg_changes = report.changes.iter().any(|c| !c.patroni);
    if pg_changes {
        // A change that needs a restart shows up as pending; one that does not is applied by the reload, and
        // nothing shows: then the wait runs out, which is no error.
        let seen = poll_until_blocking(seen_by, "a member reports a pending restart", || {
            let pending = needs_restart(&api.cluster()?);
            Ok(if pending.is_empty() { Check::Pending("none pending".into()) } else { Check::Done(()) })
        });
        match seen {
            Ok(()) | Err(WaitError::TimedOut(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !restart {
        report.pending = needs_restart(&api.cluster()?).into_iter().map(|(n, _)| n).collect();
        return Ok(report);
    }
    for _round in 0..3 {
        let c = api.cluster()?;
        let mut pending = needs_restart(&c);
        if pending.is_empty() {
            break;
        }
        // Replicas first, the leader last.
        pending.sort_by_key(|(_, role)| role == "leader" || role == "standby_leader");
        for (name, role) in pending {
            let url =
                api.member_url(&c, &name).ok_or_else(|| HaError::NoApi { tried: format!("{name}'s REST API") })?;
            let started = Instant::now();
            let r = api.send("POST", &url, "/restart", Some(&json!({"restart_pending": true})), wait)?;
            if r.status != 200 {
                return Err(HaError::Api {
                    url: format!("{url}/restart"),
                    message: format!("HTTP {}: {}", r.status, r.body.trim()),
                });
            }
            wait_back(&api, &name, role != "leader", started + wait)?;
            report.restarts.push(Restart { member: name, role, seconds: started.elapsed().as_secs_f64() });
        }
        // The next cycle recomputes pending_restart (a replica may need a second restart after the leader).
        std::thread::sleep(Duration::from_secs(loop_wait + 1));
    }
    report.pending = needs_restart(&api.cluster()?).into_iter().map(|(n, _)| n).collect();
    Ok(report)
}

/// Waits until `name` runs again (and, for a replica, streams from the leader).
fn wait_back(api: &crate::api::Api, name: &str, replica: bool, deadline: Instant) -> Result<(), HaError> {
    let what = if replica { format!("{name} runs and streams again") } else { format!("{name} runs again") };
    let back = poll_until_blocking(deadline, &what, || {
        let Ok(c) = api.cluster() else { return Ok(Check::Pending("no member's REST API answers".into())) };
        let Some(m) = c.members.iter().find(|m| m.name == name) else {
            return Ok(Check::Pending(format!("{name} is not in the cluster")));
        };
        let streams = !replica || api.streaming_members(&c).ok().flatten().is_some_and(|s| s.iter().any(|n| n == name));
        Ok(if m.is_running() && streams {
            Check::Done(())
        } else {
            Check::Pending(format!("{name} is {}{}", m.state, if m.is_running() { ", not streaming" } else { "" }))
        })
    });
    back.map_err(HaError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_only_what_changes_and_types_patroni_keys() {
        let config = json!({"ttl": 20, "failsafe_mode": true, "postgresql": {"parameters": {"max_connections": 110, "ssl": "on"}}});
        let pairs =
            parse_pairs(&["max_connections=220".into(), "ssl=on".into(), "ttl=30".into(), "failsafe_mode=true".into()])
                .unwrap();
        let changes = plan(&config, &pairs).unwrap();
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["max_connections", "ttl"]);
        assert_eq!(patch_body(&changes), json!({"ttl": 30, "postgresql": {"parameters": {"max_connections": "220"}}}));
        let r = plan(&config, &parse_pairs(&["max_connections=lots".into()]).unwrap());
        assert!(
            matches!(&r, Err(HaError::Spec { reason }) if reason == "max_connections is a whole number, not \"lots\""),
            "{r:?}"
        );
        let r = parse_pairs(&["bad name=1".into()]);
        assert!(matches!(&r, Err(HaError::Spec { reason }) if reason == "\"bad name\" is not a setting name"), "{r:?}");
    }
}
