//! `qrd check` on real servers: it fails what is missing, passes what provision made, finds real
//! breakage (the NOINHERIT public-schema trap of 15+) and keeps its JSON contract.

use crate::common::*;

fn fresh_server_fails_and_provisioned_server_passes(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let out = run_expect(qrd(&server, &scratch).arg("check"), 1);
    let text = stdout(&out);
    assert!(text.contains("fail  role.exists"), "{text}");
    for db in DATABASES {
        assert!(text.contains(&format!("fail  database.{db}.exists")), "{text}");
    }
    assert!(text.contains("hint: run `qrd provision`"), "{text}");

    provision(&server, &scratch, "Check-pw");
    let out = run_expect(qrd(&server, &scratch).arg("check"), 0);
    let text = stdout(&out);
    assert!(!text.lines().any(|l| l.starts_with("fail")), "{text}");
    assert!(text.contains("ok    role.password"), "{text}");
    assert!(text.contains("warn  server.ssl"), "ssl is off on test servers: {text}");
}
all_majors!(fresh_server_fails_and_provisioned_server_passes);

/// Remove the schema grant. On 15 the NOINHERIT owner can then no longer create tables (shown by trying);
/// on 16 it still can, through pg_database_owner, until that role loses CREATE too (a hardening some DBAs
/// apply). Either way check reports the real breakage and provision repairs it.
fn check_finds_the_public_schema_trap(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Trap-pw");
    let try_create = |table: &str| {
        block_on(async {
            let role = server.try_connect_tcp(server.host(), "QSR", ROLE, "Trap-pw").await.unwrap();
            role.batch_execute(&format!("CREATE TABLE public.{table} (x int)"))
                .await
                .map_err(|e| e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string()))
        })
    };
    block_on(async {
        let qsr = server.connect("QSR").await;
        qsr.batch_execute(r#"REVOKE ALL ON SCHEMA public FROM "qliksenserepository""#).await.unwrap();
    });
    match major {
        15 => assert!(try_create("t1").unwrap_err().contains("permission denied for schema public")),
        _ => {
            try_create("t1").expect("on 16 the owner inherits pg_database_owner's CREATE despite NOINHERIT");
            block_on(async {
                let qsr = server.connect("QSR").await;
                qsr.batch_execute("REVOKE CREATE ON SCHEMA public FROM pg_database_owner").await.unwrap();
            });
            assert!(try_create("t2").unwrap_err().contains("permission denied for schema public"));
        }
    }
    let out = run_expect(qrd(&server, &scratch).arg("check"), 1);
    let text = stdout(&out);
    assert!(text.contains("fail  database.QSR.schema_public"), "{text}");
    assert!(text.contains("cannot create objects in schema public"), "{text}");

    let out = run_expect(qrd(&server, &scratch).arg("provision"), 0);
    assert!(stdout(&out).contains(r#"grant ALL on schema public in "QSR""#), "{}", stdout(&out));
    try_create("t3").unwrap();
    run_expect(qrd(&server, &scratch).arg("check"), 0);
}
per_major!(check_finds_the_public_schema_trap: pg16 = 16, pg15 = 15);

/// The JSON report: schema_version 1, server block, summary matching the findings, ids unique, hints
/// on every warn/fail; and the facts it states match the catalog.
fn json_report_keeps_its_contract(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Json-pw");
    block_on(async {
        server.connect("postgres").await.batch_execute(r#"ALTER DATABASE "Licenses" OWNER TO postgres"#).await.unwrap();
    });
    let out = run_expect(qrd(&server, &scratch).args(["check", "--json"]), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["server"]["major"], major);
    assert_eq!(v["server"]["supported"], true);
    assert_eq!(v["server"]["user"], "postgres");
    assert_eq!(v["server"]["version"], server.version().to_string());
    let checks = v["checks"].as_array().unwrap();
    let count = |s: &str| checks.iter().filter(|c| c["status"] == s).count();
    assert_eq!(v["summary"]["ok"], count("ok"));
    assert_eq!(v["summary"]["warn"], count("warn"));
    assert_eq!(v["summary"]["fail"], count("fail"));
    let mut ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate check ids");
    for c in checks {
        assert!(c["message"].is_string());
        if c["status"] != "ok" {
            assert!(c["hint"].is_string(), "{c}");
        }
    }
    let owner = checks.iter().find(|c| c["id"] == "database.Licenses.owner").unwrap();
    assert_eq!(owner["status"], "fail");
    assert!(owner["message"].as_str().unwrap().contains(r#"owned by "postgres""#));
    assert!(owner["hint"].as_str().unwrap().contains("--fix-owner"));
}
every_run!(json_report_keeps_its_contract);

/// The human report's layout (snapshot) on a provisioned 16.
#[test]
fn human_report_snapshot() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Snap-pw");
    let out =
        run_expect(qrd(&server, &scratch).args(["check", "--pg-bin-dir"]).arg(&server.installation().client_bin), 0);
    qrd_snapshot!("check_provisioned_pg16", stdout(&out));
}

/// Client tools: with a --pg-bin-dir of an older major, check warns naming both versions.
#[test]
fn client_tools_of_an_older_major_are_reported() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    let old = qrd_testcontainers::installation(15).unwrap().client_bin;
    let out = run_expect(qrd(&server, &scratch).args(["check", "--pg-bin-dir"]).arg(&old), 1);
    let text = stdout(&out);
    assert!(text.contains("warn  client-tools"), "{text}");
    assert!(text.contains(&format!("fitting PostgreSQL {}", server.version())), "{text}");
    assert!(text.contains("pg_dump 15."), "{text}");
}

/// A Qlik database that pg_hba.conf keeps qrd out of does not stop the report: every other check still
/// runs, and that database's inside is a failure naming the cause, with the pg_hba hint.
fn unreachable_database_is_reported_not_fatal(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Reach-pw");
    let hba = server.data_dir().join("pg_hba.conf");
    let original = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host QSMQ all 127.0.0.1/32 reject\n{original}")).unwrap();
    server.reload();
    let out = run_expect(qrd(&server, &scratch).args(["check", "--json"]), 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let find = |id: &str| {
        report["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap_or_else(|| panic!("{id}"))
    };
    let qsmq = find("database.QSMQ.schema_public");
    assert_eq!(qsmq["status"], "fail");
    assert!(qsmq["message"].as_str().unwrap().contains("pg_hba.conf rejects connection"), "{qsmq}");
    assert!(qsmq["hint"].as_str().unwrap().contains("pg_hba.conf"), "{qsmq}");
    assert_eq!(find("database.QSR.schema_public")["status"], "ok");
    assert_eq!(find("database.QSMQ.owner")["status"], "ok", "facts from the maintenance connection still count");
    // provision refuses before changing anything, with the same cause.
    let pw = scratch.secret_file("pw", "Reach-pw");
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&pw), 4);
    assert!(stderr(&out).contains("\"QSMQ\" exists but qrd cannot look inside it"), "{}", stderr(&out));
}
per_major!(unreachable_database_is_reported_not_fatal: pg16 = 16);

/// PostgreSQL 16's pg_hba.conf includes: an md5 rule (and a TCP trust rule) in an included file is
/// reported as `file:line`, as the server itself reads it (`pg_hba_file_rules`).
fn rules_in_included_hba_files_are_checked(major: u32) {
    let server = Server::builder(major).host_auth(HostAuth::ScramSha256).start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "Include-pw");
    let dir = server.data_dir();
    std::fs::create_dir(dir.join("hba.d")).unwrap();
    std::fs::write(
        dir.join("hba.d/50-legacy.conf"),
        "# an old monitoring rule\nhost all all 127.0.0.2/32 md5\nhost all all 127.0.0.3/32 trust\n",
    )
    .unwrap();
    let hba = dir.join("pg_hba.conf");
    let original = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("{original}include_dir hba.d\n")).unwrap();
    server.reload();
    let out = run_expect(qrd(&server, &scratch).args(["check", "--json"]), 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let find = |id: &str| {
        report["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap_or_else(|| panic!("{id}"))
    };
    let md5 = find("auth.hba_md5");
    assert_eq!(md5["status"], "warn", "{md5}");
    assert!(md5["message"].as_str().unwrap().contains("hba.d/50-legacy.conf:2"), "{md5}");
    let tcp = find("auth.hba_tcp");
    assert_eq!(tcp["status"], "fail", "{tcp}");
    assert!(tcp["message"].as_str().unwrap().contains("trust on line(s) "), "{tcp}");
    assert!(tcp["message"].as_str().unwrap().contains("hba.d/50-legacy.conf:3"), "{tcp}");
}
per_major!(rules_in_included_hba_files_are_checked: pg16 = 16);
