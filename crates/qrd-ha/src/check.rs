//! `qrd ha check`: findings with `qrd check`'s levels and exit codes. From Patroni, etcd and HAProxy
//! ([`cluster_findings`], a pure function of a [`ClusterStatus`]): one leader; every member the cluster
//! should have present (a crashed one drops out of Patroni's `/cluster` once its lease runs out, so the
//! expected set comes from `qrd ha init`'s member list and HAProxy's servers); every replica running and
//! close behind; one timeline; no pending restart; failsafe mode; etcd quorum; HAProxy sending to the
//! leader alone. From each member's own server ([`member_settings`], [`settings_findings`]): the same
//! pg_hba, TLS, SCRAM and max_connections everywhere, as the server really runs them.

use qrd_check::{Finding, LAG_WARN_BYTES};
use qrd_pg::connect::ConnectOpts;
use serde::Serialize;

use crate::status::ClusterStatus;

pub fn cluster_findings(st: &ClusterStatus) -> Vec<Finding> {
    let mut out = Vec::new();
    let leaders: Vec<&str> = st
        .members
        .iter()
        .filter(|m| m.role == "leader" || m.role == "standby_leader")
        .map(|m| m.name.as_str())
        .collect();
    match leaders.as_slice() {
        [one] => out.push(Finding::ok("ha.leader", format!("{one} leads"))),
        [] => out.push(Finding::fail(
            "ha.leader",
            "no member leads: the repository takes no writes",
            "qrd ha status shows each member's state; Patroni's log on the members says why none took the lock",
        )),
        many => out.push(Finding::fail(
            "ha.leader",
            format!("{} members claim to lead: {}", many.len(), many.join(", ")),
            "stop the writes through any endpoint but HAProxy's and look at Patroni's logs now",
        )),
    }
    out.push(members_finding(st));
    let leader_tl = st.members.iter().find(|m| leaders.contains(&m.name.as_str())).and_then(|m| m.timeline);
    for m in st.members.iter().filter(|m| !leaders.contains(&m.name.as_str())) {
        let id = format!("ha.replica.{}", m.name);
        if m.state != "running" && m.state != "streaming" {
            out.push(Finding::fail(
                id,
                format!("{} is {}, not streaming: the cluster lost its failure margin", m.name, m.state),
                "Patroni's log on that member says why; qrd ha status for the others",
            ));
            continue;
        }
        if m.streaming == Some(false) {
            out.push(Finding::fail(
                id,
                format!("{} runs but does not stream from the leader (not in its pg_stat_replication)", m.name),
                "it falls further behind with every write and cannot take over without losing them: Patroni's log on \
                 that member says why (a missing slot, pg_hba, the replication password)",
            ));
            continue;
        }
        match m.lag_bytes {
            Some(lag) if lag as i64 > LAG_WARN_BYTES => out.push(Finding::warn(
                id,
                format!("{} is {} MiB behind the leader", m.name, lag / (1024 * 1024)),
                "a replica this far behind would lose those writes in a failover (maximum_lag_on_failover keeps it from leading)",
            )),
            Some(lag) => out.push(Finding::ok(id, format!("{} streams, {lag} bytes behind", m.name))),
            None => out.push(Finding::warn(id, format!("{}: its lag is unknown", m.name), "qrd ha status; Patroni may still be starting it")),
        }
        if let (Some(a), Some(b)) = (leader_tl, m.timeline)
            && a != b
        {
            out.push(Finding::warn(
                format!("ha.timeline.{}", m.name),
                format!("{} is on timeline {b}, the leader on {a}", m.name),
                "it has not followed the last promotion yet; if it stays, reinitialise it (patronictl reinit)",
            ));
        }
    }
    let pending: Vec<&str> = st.members.iter().filter(|m| m.pending_restart).map(|m| m.name.as_str()).collect();
    if !pending.is_empty() {
        out.push(Finding::warn(
            "ha.pending_restart",
            format!("a changed setting waits for a restart on {}", pending.join(", ")),
            "qrd ha set-param restarts them in a safe order (replicas first)",
        ));
    }
    out.push(if st.failsafe_mode {
        Finding::ok("ha.failsafe", "failsafe_mode is on: the leader keeps writing through an etcd outage")
    } else {
        Finding::warn(
            "ha.failsafe",
            "failsafe_mode is off: an etcd outage demotes the leader (writes stop)",
            "qrd ha set-param failsafe_mode=true",
        )
    });
    let healthy = st.etcd.iter().filter(|e| e.healthy).count();
    if st.etcd.is_empty() {
        out.push(Finding::warn(
            "ha.etcd",
            "no etcd endpoint known",
            "pass --config with a member's patroni.yml, or --etcd URL",
        ));
    } else if !st.etcd_quorum() {
        out.push(Finding::fail(
            "ha.etcd",
            format!("etcd has no quorum: {healthy} of {} member(s) healthy", st.etcd.len()),
            "bring etcd back (systemctl status etcd on its machines); with failsafe_mode the leader keeps writing meanwhile",
        ));
    } else if st.etcd.len() < 3 || healthy < st.etcd.len() {
        out.push(Finding::warn(
            "ha.etcd",
            format!("etcd: {healthy} of {} member(s) healthy", st.etcd.len()),
            "three etcd members on three machines survive the loss of one",
        ));
    } else {
        out.push(Finding::ok("ha.etcd", format!("etcd: {healthy} of {} members healthy", st.etcd.len())));
    }
    match &st.haproxy {
        None => {}
        Some(Err(e)) => out.push(Finding::fail(
            "ha.haproxy",
            format!("HAProxy's statistics: {e}"),
            "is HAProxy running? systemctl status haproxy",
        )),
        Some(Ok(backends)) => {
            let up: Vec<&str> =
                backends.iter().filter(|b| b.status.starts_with("UP")).map(|b| b.server.as_str()).collect();
            match (leaders.as_slice(), up.as_slice()) {
                ([l], [u]) if l == u => out.push(Finding::ok("ha.haproxy", format!("HAProxy sends to {l} only"))),
                (_, []) => out.push(Finding::fail("ha.haproxy", "HAProxy has no member UP: the Qlik nodes cannot connect", "check that HAProxy reaches each member's REST API (/primary)")),
                _ => out.push(Finding::fail(
                    "ha.haproxy",
                    format!("HAProxy sends to {} while {} leads", up.join(", "), leaders.join(", ")),
                    "HAProxy must check /primary on the REST API (option httpchk GET /primary), as qrd ha init writes it",
                )),
            }
        }
    }
    out
}

/// Every member the cluster should have is in Patroni's `/cluster`: one whose Patroni stopped or whose
/// machine died drops out when its lease runs out, and the cluster then looks whole while it cannot lose
/// another member.
fn members_finding(st: &ClusterStatus) -> Finding {
    if st.expected.is_empty() {
        return Finding::warn(
            "ha.members",
            "the members the cluster should have are unknown (no qrd-members line in --config, no HAProxy \
             statistics): a member that is down would not show",
            "pass --config with a patroni.yml qrd ha init wrote, or --haproxy-stats URL",
        );
    }
    if st.missing.is_empty() {
        return Finding::ok("ha.members", format!("every member is in the cluster: {}", st.expected.join(", ")));
    }
    let named: Vec<String> = st
        .missing
        .iter()
        .map(|m| match &m.haproxy {
            Some(h) => format!("{} (HAProxy: {h})", m.name),
            None => format!("{} (HAProxy does not list it)", m.name),
        })
        .collect();
    Finding::fail(
        "ha.members",
        format!(
            "{} {} not in Patroni's cluster: the lease ran out (Patroni stopped, or the machine is down); the \
             cluster lost its failure margin",
            named.join(", "),
            if named.len() == 1 { "is" } else { "are" }
        ),
        "start Patroni on that member (systemctl start patroni@<major>-<cluster>); its log says why it stopped",
    )
}

/// What one member's server runs with, for the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberSettings {
    pub ssl: String,
    pub ssl_min_protocol_version: String,
    pub password_encryption: String,
    pub max_connections: String,
    /// pg_hba.conf's rules as the server parsed them, one line each.
    pub hba: Vec<String>,
}

/// Each member's settings, read over its own connection (the caller's credentials, the member's host and
/// port).
pub async fn member_settings(
    members: &[(String, String, u16)],
    base: &ConnectOpts,
) -> Vec<(String, Result<MemberSettings, String>)> {
    let mut out = Vec::new();
    for (name, host, port) in members {
        let mut opts = base.clone();
        opts.host = Some(host.clone());
        opts.port = Some(*port);
        opts.prompt = false;
        let got = async {
            let session = qrd_pg::Session::open(&opts).await.map_err(|e| e.to_string())?;
            let c = session.client();
            let row = c
                .query_one(
                    "SELECT current_setting('ssl'), current_setting('ssl_min_protocol_version'), \
                     current_setting('password_encryption'), current_setting('max_connections')",
                    &[],
                )
                .await
                .map_err(|e| qrd_pg::connect::server_message(&e))?;
            let rules = c
                .query(
                    "SELECT concat_ws(' ', type, array_to_string(database, ','), array_to_string(user_name, ','), \
                     address, netmask, auth_method) FROM pg_hba_file_rules ORDER BY line_number",
                    &[],
                )
                .await
                .map_err(|e| qrd_pg::connect::server_message(&e))?;
            Ok::<_, String>(MemberSettings {
                ssl: row.get(0),
                ssl_min_protocol_version: row.get(1),
                password_encryption: row.get(2),
                max_connections: row.get(3),
                hba: rules.iter().map(|r| r.get::<_, String>(0)).collect(),
            })
        }
        .await;
        out.push((name.clone(), got));
    }
    out
}

pub fn settings_findings(got: &[(String, Result<MemberSettings, String>)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, r) in got {
        if let Err(e) = r {
            out.push(Finding::fail(
                format!("ha.member.{name}"),
                format!("{name}: could not read its settings: {e}"),
                "give the superuser's password as for any qrd command (PGPASSWORD, --password-file)",
            ));
        }
    }
    let ok: Vec<(&str, &MemberSettings)> =
        got.iter().filter_map(|(n, r)| r.as_ref().ok().map(|s| (n.as_str(), s))).collect();
    let Some((first_name, first)) = ok.first() else { return out };
    let differ: Vec<&str> = ok.iter().filter(|(_, s)| *s != *first).map(|(n, _)| *n).collect();
    if differ.is_empty() {
        out.push(Finding::ok(
            "ha.settings",
            format!("{} members run the same pg_hba, TLS, SCRAM and max_connections", ok.len()),
        ));
    } else {
        out.push(Finding::fail(
            "ha.settings",
            format!("{} run(s) other settings than {first_name} (pg_hba, ssl, password_encryption or max_connections)", differ.join(", ")),
            "a member-local value in patroni.yml overrides the DCS: remove it and reload Patroni (qrd ha status --json shows the DCS values)",
        ));
    }
    for (name, s) in &ok {
        if s.ssl != "on" {
            out.push(Finding::warn(
                format!("ha.tls.{name}"),
                format!("{name}: ssl is {}", s.ssl),
                "qrd ha set-param ssl=on, with certificates on every member",
            ));
        }
        if s.password_encryption != "scram-sha-256" {
            out.push(Finding::warn(
                format!("ha.scram.{name}"),
                format!("{name}: password_encryption is {}", s.password_encryption),
                "qrd ha set-param password_encryption=scram-sha-256",
            ));
        }
        let weak: Vec<&String> = s
            .hba
            .iter()
            .filter(|l| {
                l.ends_with(" md5") || l.ends_with(" password") || (l.ends_with(" trust") && !l.starts_with("local"))
            })
            .collect();
        if !weak.is_empty() {
            out.push(Finding::warn(
                format!("ha.hba.{name}"),
                format!(
                    "{name}: pg_hba admits {} without SCRAM: {}",
                    weak.len(),
                    weak.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
                ),
                "use scram-sha-256 in the DCS pg_hba (qrd ha status --json shows it)",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Backend;
    use crate::status::{EtcdHealth, MemberStatus};

    fn member(name: &str, role: &str, state: &str, tl: u64, lag: Option<u64>) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            role: role.into(),
            state: state.into(),
            host: None,
            port: None,
            timeline: Some(tl),
            lag_bytes: lag,
            streaming: (role != "leader").then_some(true),
            pending_restart: false,
        }
    }

    fn status() -> ClusterStatus {
        ClusterStatus {
            scope: Some("q".into()),
            leader: Some("pg1".into()),
            members: vec![
                member("pg1", "leader", "running", 2, None),
                member("pg2", "replica", "streaming", 2, Some(0)),
                member("pg3", "replica", "running", 2, Some(10)),
            ],
            expected: vec!["pg1".into(), "pg2".into(), "pg3".into()],
            missing: Vec::new(),
            failsafe_mode: true,
            ttl: Some(30),
            loop_wait: Some(10),
            retry_timeout: Some(10),
            parameters: Default::default(),
            pg_hba: vec![],
            etcd: vec![EtcdHealth { url: "http://e:2379".into(), healthy: true, detail: String::new() }],
            haproxy: Some(Ok(vec![
                Backend { proxy: "q".into(), server: "pg1".into(), status: "UP".into() },
                Backend { proxy: "q".into(), server: "pg2".into(), status: "DOWN".into() },
            ])),
            endpoint: None,
        }
    }

    fn level(f: &[Finding], id: &str) -> qrd_check::Status {
        f.iter().find(|x| x.id == id).unwrap_or_else(|| panic!("{id} in {f:#?}")).status
    }

    #[test]
    fn a_healthy_cluster_only_warns_about_one_etcd() {
        let f = cluster_findings(&status());
        assert!(f.iter().all(|x| x.status == qrd_check::Status::Ok || x.id == "ha.etcd"), "{f:#?}");
        assert_eq!(level(&f, "ha.etcd"), qrd_check::Status::Warn);
    }

    #[test]
    fn haproxy_to_a_replica_and_a_stopped_replica_fail() {
        let mut st = status();
        st.haproxy = Some(Ok(vec![Backend { proxy: "q".into(), server: "pg2".into(), status: "UP".into() }]));
        st.members[2].state = "stopped".into();
        st.members[1].timeline = Some(1);
        st.members[1].streaming = Some(false);
        let f = cluster_findings(&st);
        assert_eq!(level(&f, "ha.haproxy"), qrd_check::Status::Fail);
        assert_eq!(level(&f, "ha.replica.pg3"), qrd_check::Status::Fail);
        assert_eq!(level(&f, "ha.replica.pg2"), qrd_check::Status::Fail);
        st.etcd[0].healthy = false;
        assert_eq!(level(&cluster_findings(&st), "ha.etcd"), qrd_check::Status::Fail);
    }

    #[test]
    fn a_member_gone_from_patroni_fails_with_its_last_state() {
        let mut st = status();
        st.members.pop();
        st.missing = vec![crate::status::MissingMember { name: "pg3".into(), haproxy: Some("DOWN".into()) }];
        let f = cluster_findings(&st);
        assert_eq!(level(&f, "ha.members"), qrd_check::Status::Fail);
        let m = &f.iter().find(|x| x.id == "ha.members").unwrap().message;
        assert!(m.contains("pg3 (HAProxy: DOWN)") && m.contains("failure margin"), "{m}");
        st.expected.clear();
        st.missing.clear();
        assert_eq!(level(&cluster_findings(&st), "ha.members"), qrd_check::Status::Warn);
    }

    #[test]
    fn settings_must_match() {
        let s = MemberSettings {
            ssl: "on".into(),
            ssl_min_protocol_version: "TLSv1.2".into(),
            password_encryption: "scram-sha-256".into(),
            max_connections: "330".into(),
            hba: vec!["host all postgres 127.0.0.1 255.255.255.255 scram-sha-256".into()],
        };
        let mut other = s.clone();
        other.max_connections = "100".into();
        let f = settings_findings(&[("pg1".into(), Ok(s.clone())), ("pg2".into(), Ok(s.clone()))]);
        assert_eq!(level(&f, "ha.settings"), qrd_check::Status::Ok);
        let f = settings_findings(&[("pg1".into(), Ok(s)), ("pg2".into(), Ok(other))]);
        assert_eq!(level(&f, "ha.settings"), qrd_check::Status::Fail);
    }
}
