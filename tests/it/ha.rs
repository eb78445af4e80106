//! `qrd ha` on real Patroni, etcd and HAProxy (Debian's packages) on a private loopback block: the files
//! `qrd ha init` writes make a working Qlik repository cluster, and switchover, crashes and an etcd outage
//! behave as a DBA needs. Assertions are on what the servers hold and what a client sees.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use qrd_ha::HaError;
use qrd_ha::api::{Api, Trust};
use qrd_testcontainers::{HaLab, LAB_TTL, Writer, WriterTarget, installation};

use crate::common::*;

/// Quotes, `$`, a backslash and a space: through the env file and Patroni's own quoting. (Non-ASCII is
/// refused by `qrd ha init`: Patroni 3.0.2's bootstrap cannot quote it.)
const SUPERUSER_PW: &str = "Su-pw 'quoted\"-$HOME-\\x";
const REPO_PW: &str = "Repo-pw-$HOME-`x`";

/// psql with TLS for every lab: Debian's 15 (the PostgreSQL 16 client tools here are built without SSL).
fn client_bin(_major: u32) -> PathBuf {
    installation(15).unwrap().client_bin
}

/// The lab's files written and every process started: one leader and streaming replicas.
fn running_lab(major: u32, scratch: &Scratch) -> HaLab {
    let mut lab = HaLab::new(major, 3).unwrap();
    let out = run_expect(&mut init_cmd(&lab, scratch), 0);
    assert!(stdout(&out).contains(&format!("name one Host: {}:4432", lab.endpoint_host())), "{}", stdout(&out));
    lab.start_all().unwrap();
    lab.start_haproxy().unwrap();
    lab.wait_streaming(Duration::from_secs(120)).unwrap();
    lab
}

fn init_cmd(lab: &HaLab, scratch: &Scratch) -> Command {
    let mut cmd = qrd_bare(scratch);
    cmd.args(lab.init_args()).env("QRD_REPO_PASSWORD", REPO_PW).env("QRD_PASSWORD_POSTGRES", SUPERUSER_PW);
    cmd
}

fn api(lab: &HaLab) -> Api {
    lab.api()
}

fn ca(lab: &HaLab) -> PathBuf {
    lab.ca()
}

/// What a server answers a plain-HTTP request on a TCP connection: the bytes it sent before closing.
fn plain_http(host: Ipv4Addr, port: u16, path: &str) -> Vec<u8> {
    let mut conn = TcpStream::connect((host, port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n").as_bytes()).unwrap();
    let mut answer = Vec::new();
    // A reset connection is an answer too: no bytes.
    let _ = conn.read_to_end(&mut answer);
    answer
}

/// `qrd ha check --json`: its exit code and its findings.
fn ha_check(lab: &HaLab, scratch: &Scratch) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = run(&mut qrd_ha(lab, scratch, &["check", "--json"]));
    let findings: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    (out.status.code(), findings.as_array().unwrap().clone())
}

fn finding<'a>(findings: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    findings.iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("no {id} in {findings:#?}"))
}

/// psql over TLS, verifying the lab CA and the host name (`verify-full`): the rows, or the error.
fn psql(lab: &HaLab, host: Ipv4Addr, user: &str, pw: &str, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(client_bin(lab.major()).join("psql"))
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &host.to_string(),
            "-p",
            "4432",
            "-U",
            user,
            "-d",
            db,
            "-c",
            sql,
        ])
        .env_clear()
        .env("PGPASSWORD", pw)
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", ca(lab))
        .env("PGCONNECT_TIMEOUT", "3")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn su(lab: &HaLab, host: Ipv4Addr, sql: &str) -> String {
    psql(lab, host, "postgres", SUPERUSER_PW, "postgres", sql).unwrap_or_else(|e| panic!("{sql} on {host}: {e}"))
}

fn qrd_ha(lab: &HaLab, scratch: &Scratch, args: &[&str]) -> Command {
    let mut cmd = qrd_bare(scratch);
    cmd.arg("ha").args(args).arg("--config").arg(lab.config(0));
    cmd
}

/// A client of the endpoint (HAProxy), as the repository's services are: a new TLS connection and one
/// INSERT every ~100 ms (see [`qrd_testcontainers::Writer`]).
fn writer(lab: &HaLab) -> Writer {
    su(
        lab,
        lab.endpoint_host(),
        "CREATE TABLE IF NOT EXISTS qrd_ha_probe (id bigint PRIMARY KEY, at timestamptz DEFAULT now())",
    );
    Writer::start(WriterTarget {
        psql: client_bin(lab.major()).join("psql"),
        env: lab.endpoint_env("postgres", SUPERUSER_PW),
        table: "qrd_ha_probe".into(),
    })
}

fn finish(w: Writer) -> (Vec<i64>, Vec<String>, Duration) {
    let w = w.finish();
    if !w.failed.is_empty() {
        eprintln!("failed writes: {:#?}", &w.failed[..w.failed.len().min(5)]);
    }
    (w.acked, w.failed, w.longest_gap)
}

/// Every acknowledged id is in the table, as read through the endpoint (the current leader).
fn assert_all_there(lab: &HaLab, acked: &[i64]) {
    let have: Vec<i64> = su(lab, lab.endpoint_host(), "SELECT id FROM qrd_ha_probe ORDER BY id")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let lost: Vec<&i64> = acked.iter().filter(|id| have.binary_search(id).is_err()).collect();
    assert!(lost.is_empty(), "{} acknowledged write(s) lost: {lost:?}", lost.len());
}

fn leader_index(lab: &HaLab) -> usize {
    let c = api(lab).cluster().unwrap();
    lab.member_index(&c.leader().expect("a leader").name)
}

#[test]
fn init_switchover_and_set_param_pg15() {
    let scratch = Scratch::new();
    let lab = running_lab(15, &scratch);

    // A second init changes nothing (secrets, verifier and certificate kept).
    let out = run_expect(&mut init_cmd(&lab, &scratch), 0);
    let text = stdout(&out);
    assert!(!text.contains("created") && !text.contains("updated"), "{text}");

    rest_api_and_etcd_speak_https_only(&lab, &scratch);

    // Every member: the four databases owned by the role, SCRAM verifiers only, TLS on, the same pg_hba.
    let mut rules = Vec::new();
    for i in 0..3 {
        let h = lab.member_host(i);
        let dbs = su(
            &lab,
            h,
            "SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname) FROM pg_database WHERE datname IN ('QSR','SenseServices','QSMQ','Licenses')",
        );
        assert_eq!(
            dbs,
            "Licenses:qliksenserepository,QSMQ:qliksenserepository,QSR:qliksenserepository,SenseServices:qliksenserepository"
        );
        let hashes = su(
            &lab,
            h,
            "SELECT string_agg(rolname || ':' || left(rolpassword, 14), ',' ORDER BY rolname) FROM pg_authid WHERE rolcanlogin",
        );
        assert!(hashes.split(',').all(|r| r.ends_with(":SCRAM-SHA-256$")), "{hashes}");
        assert_eq!(su(&lab, h, "SHOW ssl"), "on");
        assert_eq!(su(&lab, h, "SHOW max_connections"), "110");
        rules.push(su(&lab, h, "SELECT string_agg(concat_ws(' ', type, database, user_name, address, auth_method), E'\\n' ORDER BY line_number) FROM pg_hba_file_rules"));
    }
    assert!(rules.windows(2).all(|w| w[0] == w[1]), "pg_hba differs between members:\n{rules:#?}");

    // A standalone repository adopted: backed up by qrd, restored into the leader, on every replica.
    adopt_standalone(&lab, &scratch);

    // The repository role: through HAProxy (its source address is a Qlik client) it works in QSR, public
    // schema included (the guide's PostgreSQL 15 grant); straight to the leader (from 127.0.0.1, which is
    // no Qlik node) pg_hba refuses it.
    psql(
        &lab,
        lab.endpoint_host(),
        "qliksenserepository",
        REPO_PW,
        "QSR",
        "CREATE TABLE qrd_ha_role_probe (id uuid PRIMARY KEY); INSERT INTO qrd_ha_role_probe VALUES (gen_random_uuid())",
    )
    .unwrap();
    let leader = lab.member_host(leader_index(&lab));
    let refused = psql(&lab, leader, "qliksenserepository", REPO_PW, "QSR", "SELECT 1").unwrap_err();
    assert!(refused.contains("no pg_hba.conf entry for host \"127.0.0.1\""), "{refused}");

    // qrd ha check, with each member's own settings compared over SQL.
    let out = run_expect(
        qrd_ha(&lab, &scratch, &["check", "--members", "--json"])
            .env("PGPASSWORD", SUPERUSER_PW)
            .env("PGUSER", "postgres"),
        0,
    );
    let findings: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let failed: Vec<_> =
        findings.as_array().unwrap().iter().filter(|f| f["status"] != "ok" && f["id"] != "ha.etcd").collect();
    assert!(failed.is_empty(), "{failed:#?}");

    // qrd check passes against the cluster's endpoint (the one Host the Qlik nodes name), and knows that a
    // node's connections reach pg_hba from HAProxy's address.
    let out = run(qrd_bare(&scratch)
        .args([
            "check",
            "-h",
            &lab.endpoint_host().to_string(),
            "-p",
            "4432",
            "-U",
            "postgres",
            "--sslmode",
            "verify-full",
            "--sslrootcert",
        ])
        .arg(ca(&lab))
        .args(["--node", &lab.node_host().to_string(), "--via", &lab.endpoint_host().to_string()])
        .env("PGPASSWORD", SUPERUSER_PW));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("through the proxy at {}", lab.endpoint_host())), "{}", stdout(&out));

    // Switchover to a named replica under a write load: writes move, none acknowledged is lost, the gap
    // is short. The REST API password comes from the env file beside --config.
    let target = 2 - usize::from(leader_index(&lab) == 2);
    let to = lab.names()[target].clone();
    let writer = writer(&lab);
    std::thread::sleep(Duration::from_secs(1));
    let out = run_expect(&mut qrd_ha(&lab, &scratch, &["switchover", "--to", &to, "--json"]), 0);
    std::thread::sleep(Duration::from_secs(1));
    let (acked, failed, gap) = finish(writer);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    eprintln!(
        "switchover: {report}\nwrites acknowledged {}, failed {}, longest gap {gap:?}",
        acked.len(),
        failed.len()
    );
    assert_eq!(report["to"], to.as_str());
    assert!(report["seconds_to_rejoined"].is_number(), "the old leader did not rejoin: {report}");
    let state: Vec<String> = (0..3)
        .map(|i| {
            psql(&lab, lab.member_host(i), "postgres", SUPERUSER_PW, "postgres", "SELECT (SELECT system_identifier FROM pg_control_system()) || ' recovery=' || pg_is_in_recovery() || ' probe=' || (to_regclass('qrd_ha_probe') IS NOT NULL)")
                .unwrap_or_else(|e| e)
        })
        .collect();
    eprintln!("members after the switchover: {state:#?}");
    assert!(gap < Duration::from_secs(5), "write gap {gap:?}");
    assert!(acked.len() > 20, "too few writes to say anything: {}", acked.len());
    assert_all_there(&lab, &acked);
    // HAProxy sends a write to the new leader.
    assert_eq!(
        su(&lab, lab.endpoint_host(), "SELECT host(inet_server_addr()) || ':' || pg_is_in_recovery()"),
        format!("{}:false", lab.member_host(target))
    );
    let c = api(&lab).cluster().unwrap();
    assert_eq!(c.leader().unwrap().name, to);
    // Asking again changes nothing.
    let out = run_expect(&mut qrd_ha(&lab, &scratch, &["switchover", "--to", &to]), 0);
    assert!(stdout(&out).contains("leads already"), "{}", stdout(&out));

    set_param_max_connections(&lab, &scratch);

    // A nightly backup through the endpoint, whichever member leads: the adopted site, verified.
    let dir = scratch.path().join("nightly");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run_expect(
        qrd_bare(&scratch)
            .args(["backup", "--json", "-h", &lab.endpoint_host().to_string(), "-p", "4432", "-U", "postgres"])
            .args(["--sslmode", "verify-full", "--sslrootcert"])
            .arg(ca(&lab))
            .arg("--out")
            .arg(&dir)
            .arg("--pg-bin-dir")
            .arg(client_bin(lab.major()))
            .env("PGPASSWORD", SUPERUSER_PW),
        0,
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let bundle = report["bundle"].as_str().unwrap().to_owned();
    run_expect(qrd_bare(&scratch).args(["backup", "verify", &bundle, "--pg-bin-dir"]).arg(client_bin(lab.major())), 0);
    assert!(c.members.iter().filter(|m| !m.is_leader()).all(|m| m.timeline == c.leader().unwrap().timeline));
}

#[test]
fn leader_crash_fails_over_and_etcd_outage_keeps_writes_pg15() {
    let scratch = Scratch::new();
    let mut lab = running_lab(15, &scratch);
    let api = api(&lab);
    let old = leader_index(&lab);
    su(&lab, lab.endpoint_host(), "CREATE TABLE before_crash AS SELECT g FROM generate_series(1, 1000) g");
    // Replication is asynchronous: what a crash may lose is what the replicas had not received. Here they
    // have it all.
    lab.wait_streaming(Duration::from_secs(30)).unwrap();

    // The leader's machine crashes: a new leader within ttl + 5 s.
    let name = lab.names()[old].clone();
    let crashed_at = Instant::now();
    lab.crash_member(old);
    let new = lab
        .wait_for("a new leader", Duration::from_secs(u64::from(LAB_TTL) + 5), || {
            (0..3)
                .filter(|i| *i != old)
                .find(|i| api.get_one(&lab.api_url(*i), "/primary").is_ok_and(|r| r.status == 200))
        })
        .unwrap();
    eprintln!(
        "{} leads {:.1} s after {} crashed",
        lab.names()[new],
        crashed_at.elapsed().as_secs_f64(),
        lab.names()[old]
    );
    // HAProxy follows within its checks.
    lab.wait_for("HAProxy to send writes to the new leader", Duration::from_secs(10), || {
        psql(&lab, lab.endpoint_host(), "postgres", SUPERUSER_PW, "postgres", "SELECT pg_is_in_recovery()")
            .ok()
            .filter(|r| r == "f")
    })
    .unwrap();
    eprintln!("writable through HAProxy {:.1} s after the crash", crashed_at.elapsed().as_secs_f64());
    assert_eq!(su(&lab, lab.endpoint_host(), "SELECT count(*) FROM before_crash"), "1000");
    su(&lab, lab.endpoint_host(), "CREATE TABLE after_crash AS SELECT 1 AS x");

    // Once its lease runs out, Patroni's /cluster no longer lists the crashed member: what is left looks
    // like a healthy cluster of two. qrd ha check knows the members qrd ha init named (and HAProxy's
    // servers) and fails, naming it and its last state; qrd ha status shows it.
    lab.wait_for("the crashed member's lease to run out", Duration::from_secs(u64::from(LAB_TTL) + 15), || {
        api.cluster().ok().filter(|c| !c.members.iter().any(|m| m.name == name)).map(|_| ())
    })
    .unwrap();
    let (code, findings) = ha_check(&lab, &scratch);
    let members = finding(&findings, "ha.members");
    assert_eq!((code, &members["status"]), (Some(1), &serde_json::json!("fail")), "{findings:#?}");
    let message = members["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{name} (HAProxy: DOWN")), "{message}");
    assert!(message.contains("lost its failure margin"), "{message}");
    let out = run_expect(&mut qrd_ha(&lab, &scratch, &["status"]), 0);
    assert!(
        stdout(&out).lines().any(|l| l.trim_start().starts_with(&name) && l.contains("MISSING")),
        "{}",
        stdout(&out)
    );

    // The crashed member comes back and rejoins as a replica of the new leader (rewound when it must be).
    lab.start_member(old).unwrap();
    lab.wait_for("the crashed member streaming again", Duration::from_secs(90), || {
        let c = api.cluster().ok()?;
        let m = c.members.iter().find(|m| m.name == name)?;
        (!m.is_leader() && (m.state == "running" || m.state == "streaming") && m.timeline == c.leader()?.timeline)
            .then_some(())
    })
    .unwrap();
    assert_eq!(su(&lab, lab.member_host(old), "SELECT count(*) FROM after_crash"), "1");
    // Its crash left WAL the new timeline does not have (at least its crash recovery's checkpoint): Patroni
    // rewound it rather than cloning it afresh.
    let log = lab.member_log(old);
    assert!(log.contains("running pg_rewind from"), "no pg_rewind in {name}'s log:\n{log}");
    assert!(!log.contains("replica has been created using basebackup"), "{name} was cloned afresh:\n{log}");
    // Whole again: the check passes.
    lab.wait_streaming(Duration::from_secs(60)).unwrap();
    let (code, findings) = ha_check(&lab, &scratch);
    assert_eq!(finding(&findings, "ha.members")["status"], "ok", "{findings:#?}");
    assert_eq!(code, Some(0), "{findings:#?}");

    // etcd stopped for a minute: with failsafe_mode the leader keeps taking writes the whole time.
    let writer = writer(&lab);
    lab.stop_etcd();
    std::thread::sleep(Duration::from_secs(60));
    lab.start_etcd().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (acked, failed, gap) = finish(writer);
    eprintln!("etcd outage: {} writes acknowledged, {} failed, longest gap {gap:?}", acked.len(), failed.len());
    assert!(failed.is_empty(), "writes failed during the etcd outage: {failed:?}");
    assert!(acked.len() > 200, "{}", acked.len());
    assert_all_there(&lab, &acked);
    assert_eq!(leader_index(&lab), new, "the leader changed during the etcd outage");
}

/// With the lab certificate, Patroni's REST API (whose requests that change something carry the REST API
/// password) and etcd answer HTTPS only, with a certificate the lab CA signed; qrd ha works over it.
fn rest_api_and_etcd_speak_https_only(lab: &HaLab, scratch: &Scratch) {
    let yml = std::fs::read_to_string(lab.config(0)).unwrap();
    let cert = lab.prefix().join("pg1/tls/server.crt");
    assert!(yml.contains(&format!("  certfile: {}\n", cert.display())), "{yml}");
    assert!(yml.contains("  protocol: https\n"), "{yml}");
    // A plain-HTTP request gets no HTTP answer at all: the TLS handshake fails and the connection closes.
    let plain = (0..3).map(|i| (lab.member_host(i), 8008, "/cluster")).chain([(lab.etcd_host(), 2379, "/health")]);
    for (host, port, path) in plain {
        let answer = plain_http(host, port, path);
        assert!(
            !answer.starts_with(b"HTTP/"),
            "{host}:{port} answered plain HTTP: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Every member advertises its REST API as HTTPS; a client that does not know the lab CA is refused.
    let c = api(lab).cluster().unwrap();
    assert!(c.members.iter().all(|m| m.api_url.as_deref().is_some_and(|u| u.starts_with("https://"))), "{c:?}");
    match qrd_ha::api::get(&format!("{}/cluster", lab.api_url(0)), &Trust::system()) {
        Err(HaError::Api { message, .. }) => assert!(message.contains("certificate"), "{message}"),
        other => panic!("a REST API certificate the system's roots do not know was believed: {other:?}"),
    }
    // qrd ha status over HTTPS, with the CA patroni.yml names: Patroni and etcd answer.
    let out = run_expect(&mut qrd_ha(lab, scratch, &["status", "--json"]), 0);
    let st: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(st["leader"].is_string(), "{st}");
    assert_eq!(st["etcd"][0]["url"], format!("https://{}:2379", lab.etcd_host()));
    assert_eq!(st["etcd"][0]["healthy"], true, "{st}");
}

/// After the switchover test's cluster work: a shared setting that needs a restart, changed in the DCS and
/// applied by restarting replicas first, the leader last; every member then runs the new value.
fn set_param_max_connections(lab: &HaLab, scratch: &Scratch) {
    let out = run_expect(&mut qrd_ha(lab, scratch, &["set-param", "max_connections=150", "--json"]), 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let order: Vec<(&str, &str)> = report["restarts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["member"].as_str().unwrap(), r["role"].as_str().unwrap()))
        .collect();
    eprintln!("restarts: {order:?}");
    assert!(order.len() >= 3, "every member restarts: {report}");
    let first_leader = order.iter().position(|(_, role)| *role == "leader").expect("the leader restarts");
    assert_eq!(order[..first_leader].len(), 2, "both replicas restart before the leader: {order:?}");
    assert!(report["pending"].as_array().unwrap().is_empty(), "{report}");
    for i in 0..3 {
        assert_eq!(su(lab, lab.member_host(i), "SHOW max_connections"), "150", "member {i}");
    }
    // Again: nothing to change, nothing restarted.
    let out = run_expect(&mut qrd_ha(lab, scratch, &["set-param", "max_connections=150"]), 0);
    assert!(stderr(&out).contains("nothing to change"), "{}", stderr(&out));
}

/// Every table of `db`'s public schema with its row count, `name=count,…`.
const COUNTS: &str = "SELECT coalesce(string_agg(format('%s=%s', c.relname, (xpath('/row/c/text()', \
    query_to_xml(format('SELECT count(*) AS c FROM public.%I', c.relname), false, true, '')))[1]::text), ',' \
    ORDER BY c.relname), '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind = 'r' AND n.nspname = 'public'";

/// `qrd ha adopt --from-host` a standalone server holding the QSR-like fixture site: the cluster then has
/// the same tables and row counts in every Qlik database, on the leader and on each replica.
fn adopt_standalone(lab: &HaLab, scratch: &Scratch) {
    use qrd_testcontainers::Server;
    use qrd_testcontainers::fixtures::{Scale, load_site};
    let source = Server::start(15);
    qrd_testcontainers::fixtures::provision_like_guide(&source, "Old-site-pw").unwrap();
    load_site(&source, Scale::Seed).unwrap();
    let pw = scratch.secret_file("source-password", source.password());
    let work = scratch.path().join("adopt");
    std::fs::create_dir_all(&work).unwrap();
    let out = run_expect(
        qrd_ha(lab, scratch, &["adopt", "--json", "-U", "postgres", "--from-host", "127.0.0.1"])
            .args(["--from-port", &source.port().to_string()])
            .arg("--from-password-file")
            .arg(&pw)
            .arg("--work-dir")
            .arg(&work)
            .env("PGPASSWORD", SUPERUSER_PW),
        0,
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["replicas"].as_array().unwrap().len(), 2, "{report}");
    for db in DATABASES {
        let want =
            block_on(async { source.connect(db).await.query_one(COUNTS, &[]).await.unwrap().get::<_, String>(0) });
        assert!(db != "QSR" || want.contains("ServerNodeConfigurations="), "{want}");
        for i in 0..3 {
            let got = psql(lab, lab.member_host(i), "postgres", SUPERUSER_PW, db, COUNTS).unwrap();
            assert_eq!(got, want, "{db} on member {i}");
        }
    }
}

/// Debian's Patroni 3.0.2 predates PostgreSQL 16 (its settings validator knows nothing newer than 15, so
/// a setting new in 16 would not reach the servers through it), yet bootstrap, cloning and switchover work.
#[test]
fn a_cluster_comes_up_and_switches_over_pg16() {
    let scratch = Scratch::new();
    let lab = running_lab(16, &scratch);
    for i in 0..3 {
        assert!(su(&lab, lab.member_host(i), "SHOW server_version").starts_with("16."));
    }
    // The bootstrap script's grants hold on 16 too: the NOINHERIT owner creates in public.
    psql(&lab, lab.endpoint_host(), "qliksenserepository", REPO_PW, "QSR", "CREATE TABLE \"Streams\" (\"ID\" uuid)")
        .unwrap();
    let out = run_expect(&mut qrd_ha(&lab, &scratch, &["switchover", "--json"]), 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["seconds_to_rejoined"].is_number(), "{report}");
}

/// No server needed: `--dry-run` shows the diffs of every file but never a secret and writes nothing; the
/// refusals say what to do.
#[test]
fn init_dry_run_shows_diffs_without_secrets_and_refusals_say_why() {
    let scratch = Scratch::new();
    let out_dir = scratch.path().join("cluster");
    let init = |extra: &[&str], su_pw: &str| {
        let mut cmd = qrd_bare(&scratch);
        cmd.args(["ha", "init", "--major", "15", "--member", "pg1=10.0.4.11", "--member", "pg2=10.0.4.12"])
            .args(["--etcd", "e1=10.0.4.21", "--endpoint", "10.0.4.30", "--node", "10.0.5.0/24", "--out"])
            .arg(&out_dir)
            .args(extra)
            .env("QRD_REPO_PASSWORD", REPO_PW)
            .env("QRD_PASSWORD_POSTGRES", su_pw);
        cmd
    };
    let out = run_expect(&mut init(&["--tls-generate", "--dry-run"], SUPERUSER_PW), 0);
    let text = stdout(&out);
    assert!(text.contains("+scope: qlik-repository"), "{text}");
    assert!(
        text.contains("hostssl QSR,SenseServices,QSMQ,Licenses qliksenserepository 10.0.5.0/24 scram-sha-256"),
        "{text}"
    );
    assert!(text.contains("(secret,") && text.contains("not shown"), "{text}");
    for secret in [SUPERUSER_PW, REPO_PW, "SCRAM-SHA-256$", "PRIVATE KEY"] {
        assert!(!text.contains(secret) && !stderr(&out).contains(secret), "{secret} shown");
    }
    assert!(!out_dir.exists(), "a dry run wrote files");

    // No certificate choice: refused with the three ways.
    let out = run_expect(&mut init(&[], SUPERUSER_PW), 2);
    assert!(stderr(&out).contains("--tls-generate"), "{}", stderr(&out));
    // A password Patroni 3.0.2's bootstrap cannot quote: refused before anything is written.
    let out = run_expect(&mut init(&["--tls-generate"], "pässword"), 4);
    assert!(stderr(&out).contains("printable ASCII"), "{}", stderr(&out));
    assert!(!out_dir.exists());
    // A member file that is not there: a usage error with the way out.
    let out = run_expect(qrd_bare(&scratch).args(["ha", "status", "--config", "/nonexistent/patroni.yml"]), 2);
    assert!(stderr(&out).contains("hint: pass --config"), "{}", stderr(&out));
    // A site certificate without the CA that signed it: the REST API and etcd could not be verified.
    let out = run_expect(&mut init(&["--tls-cert", "site.crt", "--tls-key", "site.key", "--dry-run"], SUPERUSER_PW), 2);
    assert!(stderr(&out).contains("--tls-ca is needed"), "{}", stderr(&out));

    // An empty password is refused (exit 4, as for every command), before anything is written: from a
    // file, and from a variable qrd ha reads.
    let empty = scratch.secret_file("empty-password", "");
    let out = run_expect(
        init(&["--tls-generate", "--repo-password-file", empty.to_str().unwrap()], SUPERUSER_PW)
            .env_remove("QRD_REPO_PASSWORD"),
        4,
    );
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
    let out = run_expect(&mut init(&["--tls-generate"], ""), 4);
    assert!(stderr(&out).contains("QRD_PASSWORD_POSTGRES is empty"), "{}", stderr(&out));
    assert!(!out_dir.exists());
    let out = run_expect(
        qrd_bare(&scratch).args(["ha", "status", "--api", "https://127.0.0.1:9"]).env("QRD_PATRONI_API_PASSWORD", ""),
        4,
    );
    assert!(stderr(&out).contains("QRD_PATRONI_API_PASSWORD is empty"), "{}", stderr(&out));
}

/// `qrd ha adopt` of a bundle that is not there exits as `qrd restore` of it does (2, an option's file that
/// cannot be used), with the same message, before it asks the cluster anything.
#[test]
fn adopting_a_missing_bundle_fails_as_restore_does() {
    let scratch = Scratch::new();
    let server = qrd_testcontainers::Server::start(15);
    let missing = "/nonexistent/qrd-backup.tar.zst";
    let restore = run_expect(qrd(&server, &scratch).args(["restore", missing]), 2);
    let adopt = run_expect(
        qrd(&server, &scratch)
            .args(["ha", "adopt", "--bundle", missing, "--api", "https://127.0.0.1:9"])
            .args(["--config", "/nonexistent/patroni.yml"]),
        2,
    );
    let first = |out: &std::process::Output| stderr(out).lines().next().unwrap_or_default().to_owned();
    assert!(first(&restore).contains(missing), "{}", stderr(&restore));
    assert_eq!(first(&adopt), first(&restore));
}
