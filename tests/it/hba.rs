//! `qrd hba` on real servers inside a private network namespace: what `explain` predicts is what the
//! server does to clients connecting from 127.0.0.2 and 127.0.0.3, `allow-nodes` lets exactly the named
//! node in, and an edit the server cannot load is rolled back.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Arc;

use qrd_testcontainers::Namespace;
use serde_json::Value;

use crate::common::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LO3: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const REPO_PW: &str = "Repo pass 'with' quotes";

/// qrd inside the server's namespace, reaching the server through its socket (the harness's `local … trust`
/// rule), so the tests can remove every TCP rule without locking qrd out.
fn q(server: &Server, scratch: &Scratch) -> Command {
    let mut cmd = qrd(server, scratch);
    cmd.env("PGHOST", server.socket_dir());
    server.namespace().expect("a namespaced server").enter(&mut cmd);
    cmd
}

fn namespaced_server(major: u32) -> (Arc<Namespace>, Server) {
    let ns = Namespace::builder().addr(LO2).addr(LO3).start().unwrap();
    let server = Server::builder(major).namespace(ns.clone()).listen(&[LOCALHOST, LO2, LO3]).start().unwrap();
    (ns, server)
}

/// A TCP connection from `from` (inside the namespace) as `user`; `Ok(())` or the server's message.
fn connect_from(ns: &Namespace, server: &Server, from: IpAddr, user: &str, db: &str, pw: &str) -> Result<(), String> {
    ns.block_on(async {
        match server.try_connect_tcp(from, db, user, pw).await {
            Ok(client) => {
                // The connection is real: it can run a query and sees where it came from.
                let row = client.query_one("SELECT host(inet_client_addr())", &[]).await.unwrap();
                assert_eq!(row.get::<_, String>(0), from.to_string());
                Ok(())
            }
            Err(e) => Err(e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())),
        }
    })
}

fn explain(server: &Server, scratch: &Scratch, from: IpAddr, user: &str, db: &str) -> Value {
    let out = run(q(server, scratch)
        .args(["hba", "explain", "--json", "--user", user, "--database", db])
        .args(["--address".to_owned(), from.to_string()]));
    let v: Value = serde_json::from_slice(&out.stdout).expect("explain --json prints JSON");
    let refused = v["outcome"] == "no_match" || v["method"] == "reject";
    assert_eq!(out.status.code(), Some(if refused { 1 } else { 0 }), "exit code follows the outcome: {v}");
    v
}

/// The server's message when `method` matched but the client could not authenticate with it.
fn auth_failure(method: &str, user: &str) -> String {
    match method {
        "scram-sha-256" | "md5" | "password" => format!("password authentication failed for user \"{user}\""),
        "ident" => format!("Ident authentication failed for user \"{user}\""),
        other => panic!("no expected failure message for method {other}"),
    }
}

/// `qrd check --node` for 127.0.0.2, 127.0.0.3 and 127.0.0.0/30: the hba.node findings by id.
fn node_checks(server: &Server, scratch: &Scratch) -> std::collections::BTreeMap<String, Value> {
    let out = run(q(server, scratch)
        .args(["check", "--json", "--node", "127.0.0.2", "--node", "127.0.0.3"])
        .args(["--node", "127.0.0.0/30"]));
    let v: Value = serde_json::from_slice(&out.stdout).expect("check --json prints JSON");
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("hba.node"))
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

fn hba_text(server: &Server) -> String {
    std::fs::read_to_string(server.data_dir().join("pg_hba.conf")).unwrap()
}

fn explain_agrees_with_the_server(major: u32) {
    let (ns, server) = namespaced_server(major);
    let scratch = Scratch::new();
    let pw = scratch.secret_file("repo-password", REPO_PW);
    run_expect(q(&server, &scratch).arg("provision").arg("--repo-password-file").arg(&pw), 0);
    block_on(async {
        let c = server.connect("postgres").await;
        c.batch_execute(
            "CREATE ROLE qlikadmins NOLOGIN;
             CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE qlikadmins;
             CREATE ROLE bob LOGIN PASSWORD 'bob-pw';",
        )
        .await
        .unwrap();
    });
    let su = server.superuser().to_owned();
    let su_pw = server.password().to_owned();

    // The harness lets all of 127.0.0.0/8 in; without that rule the repository role gets nowhere.
    run_expect(q(&server, &scratch).args(["hba", "remove", "--match-address", "127.0.0.0/8"]), 0);
    assert!(!hba_text(&server).contains("127.0.0.0/8"));
    let err = connect_from(&ns, &server, LO2, ROLE, "QSR", REPO_PW).unwrap_err();
    assert!(err.starts_with("no pg_hba.conf entry for host \"127.0.0.2\""), "{err}");

    // allow-nodes: a diff on --dry-run, then one rule for the node, in front of the other TCP rules.
    let before = hba_text(&server);
    let out = run_expect(q(&server, &scratch).args(["hba", "allow-nodes", "127.0.0.2", "--dry-run"]), 0);
    qrd_snapshot!("hba_allow_nodes_dry_run", stdout(&out));
    assert_eq!(hba_text(&server), before, "--dry-run writes nothing");
    run_expect(q(&server, &scratch).args(["hba", "allow-nodes", "127.0.0.2"]), 0);
    let after = hba_text(&server);
    // pg_hba.conf compares names as written (no case folding), so QSR needs no quotes there.
    let rule_spaced = "host QSR,SenseServices,QSMQ,Licenses qliksenserepository 127.0.0.2/32 scram-sha-256";
    assert!(
        after.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == rule_spaced),
        "no allow-nodes rule in:\n{after}"
    );
    // Idempotent: a second run writes nothing.
    let out = run_expect(q(&server, &scratch).args(["hba", "allow-nodes", "127.0.0.2"]), 0);
    assert!(stderr(&out).contains("already lets 127.0.0.2/32 in"), "{}", stderr(&out));
    assert_eq!(hba_text(&server), after);
    // The node reaches all four databases as the role; 127.0.0.3 does not.
    for db in DATABASES {
        connect_from(&ns, &server, LO2, ROLE, db, REPO_PW).unwrap_or_else(|e| panic!("{db} from 127.0.0.2: {e}"));
    }
    let err = connect_from(&ns, &server, LO3, ROLE, "QSR", REPO_PW).unwrap_err();
    assert!(err.starts_with("no pg_hba.conf entry for host \"127.0.0.3\""), "{err}");
    // `qrd check --node` says the same.
    let report = node_checks(&server, &scratch);
    assert_eq!(report["hba.node.127.0.0.2"]["status"], "ok", "{report:?}");
    assert_eq!(report["hba.node.127.0.0.3"]["status"], "fail", "{report:?}");
    let msg = report["hba.node.127.0.0.3"]["message"].as_str().unwrap();
    assert!(msg.contains("no pg_hba.conf entry for host \"127.0.0.3\""), "{msg}");
    assert!(report["hba.node.127.0.0.3"]["hint"].as_str().unwrap().contains("qrd hba allow-nodes 127.0.0.3"));
    assert_eq!(report["hba.node.127.0.0.0/30"]["status"], "fail", "a subnet is checked at both ends");

    // A wrong-method rule, a group rule on samenet, and a reject rule.
    let add = |args: &[&str]| {
        run_expect(q(&server, &scratch).args(["hba", "add", "--append", "--type", "host"]).args(args), 0);
    };
    add(&["--database", "postgres", "--user", "all", "--address", "127.0.0.3/32", "--method", "ident"]);
    add(&["--database", "all", "--user", "+qlikadmins", "--address", "samenet", "--method", "scram-sha-256"]);
    add(&["--database", "all", "--user", ROLE, "--address", "127.0.0.3/32", "--method", "reject"]);

    // (from, user, database, password, expected outcome: Ok(method) or Err(kind))
    let cases: [(IpAddr, &str, &str, &str, &str); 9] = [
        (LO2, ROLE, "QSR", REPO_PW, "scram-sha-256"),
        (LO2, ROLE, "Licenses", "wrong password", "scram-sha-256"),
        (LO2, ROLE, "postgres", REPO_PW, "no_match"),
        (LO3, ROLE, "QSR", REPO_PW, "reject"),
        (LO3, &su, "postgres", &su_pw, "ident"),
        (LO2, "alice", "postgres", "alice-pw", "scram-sha-256"),
        (LO3, "alice", "QSR", "alice-pw", "scram-sha-256"),
        (LO3, "alice", "postgres", "alice-pw", "ident"),
        (LO2, "bob", "postgres", "bob-pw", "no_match"),
    ];
    let report = node_checks(&server, &scratch);
    let msg = report["hba.node.127.0.0.3"]["message"].as_str().unwrap();
    assert!(msg.contains("pg_hba.conf rejects connection for host \"127.0.0.3\""), "{msg}");

    for (from, user, db, password, expected) in cases {
        let what = format!("{user} → {db} from {from}");
        let predicted = explain(&server, &scratch, from, user, db);
        let real = connect_from(&ns, &server, from, user, db, password);
        match predicted["outcome"].as_str() {
            Some("matched") => {
                let method = predicted["method"].as_str().unwrap();
                assert_eq!(method, expected, "{what}: predicted {predicted}");
                if method == "reject" {
                    assert_eq!(real, Err(predicted["message"].as_str().unwrap().to_owned()), "{what}");
                } else if password == "wrong password" || method == "ident" {
                    assert_eq!(real, Err(auth_failure(method, user)), "{what}");
                } else {
                    assert_eq!(real, Ok(()), "{what}");
                }
            }
            Some("no_match") => {
                assert_eq!(expected, "no_match", "{what}: predicted {predicted}");
                assert_eq!(real, Err(predicted["message"].as_str().unwrap().to_owned()), "{what}");
            }
            _ => panic!("{what}: explain could not decide: {predicted}"),
        }
    }
    // --ssl against a server without SSL: no connection can use it, and explain says so.
    let out = run(q(&server, &scratch).args(["hba", "explain", "--json", "--ssl", "--address", "127.0.0.2"]).args([
        "--user",
        ROLE,
        "--database",
        "QSR",
    ]));
    assert!(stderr(&out).contains("the server has ssl = off"), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "scram-sha-256", "{v}");
}
all_majors!(explain_agrees_with_the_server);

/// An edit the server cannot load (ldap without its mandatory options) is put back: the file is
/// byte-for-byte what it was, the server still reads it without errors, and the node still gets in.
fn a_broken_edit_is_rolled_back(major: u32) {
    let (ns, server) = namespaced_server(major);
    let scratch = Scratch::new();
    let pw = scratch.secret_file("repo-password", REPO_PW);
    run_expect(q(&server, &scratch).arg("provision").arg("--repo-password-file").arg(&pw), 0);
    run_expect(q(&server, &scratch).args(["hba", "remove", "--match-address", "127.0.0.0/8"]), 0);
    run_expect(q(&server, &scratch).args(["hba", "allow-nodes", "127.0.0.2"]), 0);
    let before = hba_text(&server);

    let out = run(q(&server, &scratch).args([
        "hba",
        "add",
        "--type",
        "host",
        "--database",
        "all",
        "--user",
        "all",
        "--address",
        "127.0.0.3/32",
        "--method",
        "ldap",
    ]));
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("ldap"), "the server's complaint is shown: {err}");
    assert!(err.contains("the previous file is back in place"), "says the file was restored: {err}");
    assert_eq!(hba_text(&server), before, "the previous file is back, byte for byte");

    let errors: i64 = block_on(async {
        let c = server.connect("postgres").await;
        c.query_one("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL", &[]).await.unwrap().get(0)
    });
    assert_eq!(errors, 0, "the server reads the restored file without errors");
    connect_from(&ns, &server, LO2, ROLE, "QSR", REPO_PW).expect("the node still gets in");
    let err = connect_from(&ns, &server, LO3, ROLE, "QSR", REPO_PW).unwrap_err();
    assert!(err.starts_with("no pg_hba.conf entry for host \"127.0.0.3\""), "only the named node gets in: {err}");

    // Bad input is refused before anything is written.
    for (args, code, says) in [
        (&["--address", "10.0.0.300/33", "--method", "md5"][..], 4, "10.0.0.300/33"),
        (&["--address", "10.0.0.0/8", "--method", "md4"][..], 2, "md4"),
        (&["--address", "10.0.0.0/8", "--method", "md5", "--type", "hostwhatever"][..], 2, "hostwhatever"),
    ] {
        let out = run(q(&server, &scratch).args(["hba", "add", "--database", "QSR", "--user", ROLE]).args(args));
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert_eq!(hba_text(&server), before, "{args:?} leaves the file alone");
    }

    // A copy elsewhere is edited alone: the live server's file stays, and nothing is reloaded for it.
    let copy_dir = scratch.path().join("old-data");
    std::fs::create_dir(&copy_dir).unwrap();
    std::fs::write(copy_dir.join("pg_hba.conf"), &before).unwrap();
    let reloads = server.log().matches("received SIGHUP").count();
    let out = run_expect(q(&server, &scratch).args(["hba", "allow-nodes", "127.0.0.9", "-D"]).arg(&copy_dir), 0);
    assert!(stderr(&out).contains("is not a file the server we connected to reads"), "{}", stderr(&out));
    assert!(std::fs::read_to_string(copy_dir.join("pg_hba.conf")).unwrap().contains("127.0.0.9/32"));
    assert_eq!(hba_text(&server), before);
    assert_eq!(
        server.log().matches("received SIGHUP").count(),
        reloads,
        "no reload for a file the server does not read"
    );
}
every_run!(a_broken_edit_is_rolled_back);

/// A node rule never lands above a `reject` the site wrote for an overlapping address (a decommissioned
/// node): allow-nodes of the subnet does not re-admit that node.
fn allow_nodes_does_not_override_a_reject(major: u32) {
    let (ns, server) = namespaced_server(major);
    let scratch = Scratch::new();
    let pw = scratch.secret_file("repo-password", REPO_PW);
    run_expect(q(&server, &scratch).arg("provision").arg("--repo-password-file").arg(&pw), 0);
    run_expect(q(&server, &scratch).args(["hba", "remove", "--match-address", "127.0.0.0/8"]), 0);
    // The site refuses the old node 127.0.0.3 explicitly, then lets the rest of its subnet in.
    for (addr, method) in [("127.0.0.3/32", "reject"), ("127.0.0.0/30", "scram-sha-256")] {
        run_expect(
            q(&server, &scratch)
                .args(["hba", "add", "--append", "--type", "host", "--database", "all", "--user", ROLE])
                .args(["--address", addr, "--method", method]),
            0,
        );
    }
    let err = connect_from(&ns, &server, LO3, ROLE, "QSR", REPO_PW).unwrap_err();
    assert!(err.starts_with("pg_hba.conf rejects connection for host \"127.0.0.3\""), "refused before: {err}");
    // A colleague runs the guide's step for the subnet.
    run_expect(q(&server, &scratch).args(["hba", "allow-nodes", "127.0.0.0/30"]), 0);
    eprintln!("{}", hba_text(&server));
    match connect_from(&ns, &server, LO3, ROLE, "QSR", REPO_PW) {
        Ok(()) => panic!("allow-nodes put its rule above the site's reject line: 127.0.0.3 is admitted again"),
        Err(e) => {
            assert!(
                e.starts_with("pg_hba.conf rejects connection for host \"127.0.0.3\""),
                "the reject line refuses: {e}"
            )
        }
    }
}
per_major!(allow_nodes_does_not_override_a_reject: pg16 = 16);

/// Without a connection, `explain --data-dir` words a refusal as the data directory's major does: 12 and 13
/// say `SSL off` where 14+ say `no encryption` (PG_VERSION tells which).
fn explain_offline_words_refusals_as_the_data_directorys_major(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let out = run(qrd_bare(&scratch)
        .args(["hba", "explain", "--offline", "--address", "10.9.9.9"])
        .args(["--user", "nobody", "--database", "QSR", "-D"])
        .arg(server.data_dir()));
    assert_eq!(out.status.code(), Some(1), "a refused connection exits 1: {}", stderr(&out));
    let expected = if major < 14 { "SSL off" } else { "no encryption" };
    assert!(
        stdout(&out).contains(&format!(
            "no pg_hba.conf entry for host \"10.9.9.9\", user \"nobody\", database \"QSR\", {expected}"
        )),
        "{}",
        stdout(&out)
    );
}
per_major!(explain_offline_words_refusals_as_the_data_directorys_major: pg12 = 12, pg16 = 16);
