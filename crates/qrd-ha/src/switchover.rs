//! `qrd ha switchover`: the planned move of the leader, through Patroni (which stops the leader cleanly,
//! waits for the candidate to have everything, promotes it and turns the old leader into a replica), then
//! waited for: the new leader answers `/primary`, HAProxy sends to it alone, the old leader streams again.

use std::time::{Duration, Instant};

use qrd_pgbin::{Check, WaitError, poll_until_blocking};
use serde::Serialize;
use serde_json::json;

use crate::HaError;
use crate::api::Cluster;
use crate::status::ClusterRef;

#[derive(Debug, Clone, Serialize)]
pub struct SwitchoverReport {
    pub from: String,
    pub to: String,
    pub timeline_before: Option<u64>,
    pub timeline_after: Option<u64>,
    /// From the request until the new leader answers `/primary` (it accepts writes).
    pub seconds_to_writable: f64,
    /// Until HAProxy marks the new leader UP and every other member DOWN (when its statistics are known).
    pub seconds_to_haproxy: Option<f64>,
    /// Until the old leader runs again as a replica of the new one.
    pub seconds_to_rejoined: Option<f64>,
    /// What Patroni answered.
    pub patroni_said: String,
}

/// The replica a switchover goes to when none is named: running, not tagged `nofailover`, least behind.
pub fn pick_candidate(cluster: &Cluster) -> Option<String> {
    cluster
        .members
        .iter()
        .filter(|m| !m.is_leader() && m.is_running())
        .min_by_key(|m| m.lag_bytes().unwrap_or(u64::MAX))
        .map(|m| m.name.clone())
}

pub fn switchover(cref: &ClusterRef, to: Option<&str>, wait: Duration) -> Result<SwitchoverReport, HaError> {
    let api = cref.api();
    let cluster = api.cluster()?;
    let leader = cluster
        .leader()
        .ok_or_else(|| {
            HaError::Refused("the cluster has no leader: nothing to switch over from (qrd ha status)".into())
        })?
        .clone();
    let to = match to {
        Some(t) => {
            let m = cluster.members.iter().find(|m| m.name == t).ok_or_else(|| {
                let names: Vec<&str> = cluster.members.iter().map(|m| m.name.as_str()).collect();
                HaError::Refused(format!("no member {t:?} in the cluster (members: {})", names.join(", ")))
            })?;
            if m.is_leader() {
                // Asked for what already is: nothing to do (a re-run after a switchover succeeds).
                return Ok(SwitchoverReport {
                    from: t.to_owned(),
                    to: t.to_owned(),
                    timeline_before: m.timeline,
                    timeline_after: m.timeline,
                    seconds_to_writable: 0.0,
                    seconds_to_haproxy: None,
                    seconds_to_rejoined: None,
                    patroni_said: format!("{t} leads already: nothing was done"),
                });
            }
            if !m.is_running() {
                return Err(HaError::Refused(format!("{t} is {}, not running: it cannot take over", m.state)));
            }
            t.to_owned()
        }
        None => pick_candidate(&cluster)
            .ok_or_else(|| HaError::Refused("no running replica to switch over to (qrd ha status)".into()))?,
    };
    let leader_url = api
        .member_url(&cluster, &leader.name)
        .or_else(|| api.urls().first().cloned())
        .ok_or_else(|| HaError::NoApi { tried: "no REST API URL known".into() })?;
    let candidate_url = api.member_url(&cluster, &to);

    // The candidate must stream from the leader. Measured with Patroni 3.0.2: right after a cluster
    // starts, a replica can run without streaming (its slot not made yet); Patroni switched over to it
    // anyway (the writes it lacked were under maximum_lag_on_failover) and pg_rewind then discarded
    // acknowledged writes on the old leader. So qrd waits for streaming, and refuses without it.
    let settle = Instant::now() + wait.min(Duration::from_secs(30));
    let streams = poll_until_blocking(settle, &format!("{to} streams from {}", leader.name), || {
        Ok(match api.streaming_members(&api.cluster()?)? {
            Some(s) if s.contains(&to) => Check::Done(()),
            Some(s) if s.is_empty() => Check::Pending("no member streams".into()),
            Some(s) => Check::Pending(format!("streaming: {}", s.join(", "))),
            None => Check::Pending("no leader".into()),
        })
    });
    match streams {
        Ok(()) => {}
        Err(WaitError::TimedOut(_)) => {
            let streaming = api.streaming_from(&leader_url)?;
            let seen: Vec<String> = streaming.iter().map(|(n, s)| format!("{n} {s}")).collect();
            return Err(HaError::Refused(format!(
                "{to} does not stream from {} (its pg_stat_replication shows: {}): a switchover now would lose the \
                 writes {to} has not received; wait for it to stream (qrd ha status), or choose another member",
                leader.name,
                if seen.is_empty() { "no standby".to_owned() } else { seen.join(", ") }
            )));
        }
        Err(e) => return Err(e.into()),
    }

    let started = Instant::now();
    let reply = api.send(
        "POST",
        &leader_url,
        "/switchover",
        Some(&json!({"leader": leader.name, "candidate": to})),
        wait.max(Duration::from_secs(30)),
    )?;
    if reply.status != 200 {
        return Err(HaError::Refused(format!(
            "Patroni refused the switchover (HTTP {}): {}",
            reply.status,
            reply.body.trim()
        )));
    }
    let deadline = started + wait;

    // Writable: the candidate answers /primary (Patroni says 200 only on the leader with postgres running
    // read-write).
    let writable = poll_until_blocking(deadline, &format!("{to} leads and answers /primary"), || {
        Ok::<_, HaError>(match &candidate_url {
            Some(url) => match api.get_one(url, "/primary") {
                Ok(r) if r.status == 200 => Check::Done(started.elapsed()),
                Ok(r) => Check::Pending(format!("{to}'s /primary answers HTTP {}", r.status)),
                Err(e) => Check::Pending(e.to_string()),
            },
            None => match api.cluster().map(|c| c.leader().map(|l| l.name.clone())) {
                Ok(Some(leader)) if leader == to => Check::Done(started.elapsed()),
                Ok(Some(leader)) => Check::Pending(format!("{leader} leads")),
                Ok(None) => Check::Pending("no leader".into()),
                Err(e) => Check::Pending(e.to_string()),
            },
        })
    })?;

    // What follows is measured, not required: a wait that runs out leaves its time unknown.
    let seconds_to_haproxy = match &cref.haproxy_stats {
        None => None,
        Some(stats) => optional(poll_until_blocking(deadline, &format!("HAProxy sends to {to} alone"), || {
            let Ok(backends) = crate::api::haproxy_backends(stats) else {
                return Ok(Check::Pending("HAProxy's statistics do not answer".into()));
            };
            let ours: Vec<_> = backends.iter().filter(|b| cluster.members.iter().any(|m| m.name == b.server)).collect();
            Ok(if !ours.is_empty() && ours.iter().all(|b| (b.server == to) == b.status.starts_with("UP")) {
                Check::Done(started.elapsed().as_secs_f64())
            } else {
                let seen: Vec<String> = ours.iter().map(|b| format!("{} {}", b.server, b.status)).collect();
                Check::Pending(seen.join(", "))
            })
        }))?,
    };

    // The old leader back as a replica on the new timeline.
    let mut timeline_after = None;
    let rejoined = poll_until_blocking(deadline, &format!("{} runs again as a replica of {to}", leader.name), || {
        let Ok(c) = api.cluster() else { return Ok(Check::Pending("no member's REST API answers".into())) };
        timeline_after = c.members.iter().find(|m| m.name == to).and_then(|m| m.timeline);
        let old = c.members.iter().find(|m| m.name == leader.name);
        Ok(if old.is_some_and(|m| !m.is_leader() && m.is_running()) && c.leader().is_some_and(|l| l.name == to) {
            Check::Done(started.elapsed().as_secs_f64())
        } else {
            Check::Pending(old.map(|m| format!("{} is {} ({})", m.name, m.state, m.role)).unwrap_or_default())
        })
    });
    let seconds_to_rejoined = optional(rejoined)?;
    Ok(SwitchoverReport {
        from: leader.name,
        to,
        timeline_before: leader.timeline,
        timeline_after,
        seconds_to_writable: writable.as_secs_f64(),
        seconds_to_haproxy,
        seconds_to_rejoined,
        patroni_said: reply.body.trim().to_owned(),
    })
}

/// The value of a wait whose timeout is no error; an interruption still is.
fn optional<T>(waited: Result<T, WaitError<HaError>>) -> Result<Option<T>, HaError> {
    match waited {
        Ok(v) => Ok(Some(v)),
        Err(WaitError::TimedOut(t)) => {
            tracing::debug!("{t}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
