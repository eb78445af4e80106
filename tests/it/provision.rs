//! `qrd provision` on real servers: what it creates, idempotency, dry runs, refusals and recovery.

use crate::common::*;

/// A fresh server gets exactly the guide's objects: role with its attributes and a SCRAM verifier, the
/// four UTF8 databases owned by it, the grants, and USAGE+CREATE on schema public in each database.
fn creates_what_the_guide_creates(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let out = provision(&server, &scratch, "Repo-pw-1");
    assert!(stdout(&out).contains("provisioned: 22 changes"), "{}", stdout(&out));

    let state = block_on(catalog_state(&server, ROLE));
    // LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION VALID UNTIL 'infinity'
    assert_eq!(state.roles[ROLE], "t f f f f f infinity");
    assert_eq!(state.memberships, vec![format!("{ROLE} -> postgres")]);
    assert_eq!(state.hash_type.as_deref(), Some("SCRAM-SHA-256"));
    assert_eq!(state.databases.len(), 4, "{state:#?}");
    for db in DATABASES {
        let d = &state.databases[db];
        assert_eq!(d.encoding, "UTF8", "{db}");
        assert_eq!(d.owner, ROLE, "{db}");
        for expected in [
            "PUBLIC CONNECT by qliksenserepository",
            "PUBLIC TEMPORARY by qliksenserepository",
            "postgres CREATE by qliksenserepository",
            "postgres CONNECT by qliksenserepository",
            "postgres TEMPORARY by qliksenserepository",
            "qliksenserepository CREATE by qliksenserepository",
            "qliksenserepository CONNECT by qliksenserepository",
            "qliksenserepository TEMPORARY by qliksenserepository",
        ] {
            assert!(d.acl_rows.iter().any(|r| r == expected), "{db}: missing {expected:?} in {:?}", d.acl_rows);
        }
        assert!(d.public_acl_rows.contains(&format!("{ROLE} CREATE")), "{db}: {:?}", d.public_acl_rows);
        assert!(d.public_acl_rows.contains(&format!("{ROLE} USAGE")), "{db}: {:?}", d.public_acl_rows);
    }
    block_on(can_login(&server, "QSR", ROLE, "Repo-pw-1")).unwrap();
}
all_majors!(creates_what_the_guide_creates);

/// The repository role can connect to each database over TCP and create, fill and read a table in
/// `public`, and use LISTEN/NOTIFY in QSMQ, as Qlik's services do. On 15+ this needs the schema grant.
fn repository_role_can_work_in_each_database(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Repo-pw-2");
    block_on(async {
        for db in DATABASES {
            let c = server.try_connect_tcp(server.host(), db, ROLE, "Repo-pw-2").await.unwrap();
            c.batch_execute(
                r#"CREATE TABLE public."Apps" ("ID" uuid PRIMARY KEY, "Name" text);
                              INSERT INTO public."Apps" VALUES (md5(random()::text)::uuid, 'x');"#,
            )
            .await
            .unwrap_or_else(|e| panic!("{db}: {:?}", e.as_db_error()));
            let n: i64 = c.query_one(r#"SELECT count(*) FROM public."Apps""#, &[]).await.unwrap().get(0);
            assert_eq!(n, 1);
            let owner: String = c
                .query_one(r#"SELECT tableowner::text FROM pg_tables WHERE tablename = 'Apps'"#, &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(owner, ROLE);
        }
        let c = server.try_connect_tcp(server.host(), "QSMQ", ROLE, "Repo-pw-2").await.unwrap();
        c.batch_execute("LISTEN qsmq; NOTIFY qsmq, 'hello'").await.unwrap();
    });
}
per_major!(repository_role_can_work_in_each_database: pg16 = 16, pg15 = 15, pg14 = 14, pg12 = 12);

/// A second run changes nothing, says so, and leaves every catalog entry (even the password verifier's
/// salt) as it was.
fn second_run_changes_nothing(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Repo-pw-3");
    let verifier = |s: &Server| {
        block_on(async {
            let c = s.connect("postgres").await;
            c.query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&ROLE])
                .await
                .unwrap()
                .get::<_, String>(0)
        })
    };
    let before = (block_on(catalog_state(&server, ROLE)), verifier(&server));

    let out = provision(&server, &scratch, "Repo-pw-3");
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    // And without a password: the existing one is kept.
    let out = run_expect(qrd(&server, &scratch).arg("provision"), 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));

    let after = (block_on(catalog_state(&server, ROLE)), verifier(&server));
    assert_eq!(before, after);
}
all_majors!(second_run_changes_nothing);

/// A new password for an existing role is applied (and only the password changes).
fn new_password_is_applied(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "old-password");
    let out = provision(&server, &scratch, "new-password");
    assert!(stdout(&out).contains("set the password of role"), "{}", stdout(&out));
    assert!(stdout(&out).contains("provisioned: 1 change"), "{}", stdout(&out));
    block_on(async {
        can_login(&server, "QSR", ROLE, "new-password").await.unwrap();
        let err = can_login(&server, "QSR", ROLE, "old-password").await.unwrap_err();
        assert!(err.contains("password authentication failed"), "{err}");
    });
}
every_run!(new_password_is_applied);

/// `--dry-run` prints a psql script and changes nothing; the script's shape is snapshotted on 14 and 16.
fn dry_run_prints_sql_and_changes_nothing(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let pw = scratch.secret_file("pw", "Dry-run-pw");
    let before = block_on(catalog_state(&server, ROLE));
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--dry-run", "--repo-password-file"]).arg(&pw), 0);
    let after = block_on(catalog_state(&server, ROLE));
    assert_eq!(before, after, "a dry run changed the server");
    assert!(after.roles.is_empty() && after.databases.is_empty());
    let script = stdout(&out);
    assert!(!script.contains("Dry-run-pw"), "the password leaked into the dry run");
    assert!(!script.contains("SCRAM-SHA-256$"), "a verifier leaked into the dry run");
    if major == 14 || major == 16 {
        // The versions are pinned by install-postgres.sh (16.14, 14.17), so they stay in the snapshot.
        qrd_snapshot!(format!("provision_dry_run_pg{major}"), script);
    }
}
all_majors!(dry_run_prints_sql_and_changes_nothing);

/// The dry-run script is what qrd runs: executing it with psql (verifier supplied as the variable) gives
/// the same catalog as `qrd provision`.
fn dry_run_script_runs_in_psql(major: u32) {
    let (a, b) = (Server::start(major), Server::start(major));
    let scratch = Scratch::new();
    let out = run_expect(qrd(&a, &scratch).args(["provision", "--dry-run"]), 0);
    let script = scratch.secret_file("plan.sql", &stdout(&out));
    let verifier = qrd_pg::password::verifier::compute(
        qrd_pg::password::verifier::Encryption::ScramSha256,
        &qrd_pg::Secret::new("Script-pw"),
        ROLE,
    );
    let psql = run(a.psql("postgres").arg("-v").arg(format!("verifier={verifier}")).arg("-f").arg(&script));
    assert!(psql.status.success(), "{}", stderr(&psql));
    provision(&b, &scratch, "Script-pw");
    let (sa, sb) = (block_on(catalog_state(&a, ROLE)), block_on(catalog_state(&b, ROLE)));
    assert_eq!(sa, sb);
    block_on(can_login(&a, "QSR", ROLE, "Script-pw")).unwrap();
}
every_run!(dry_run_script_runs_in_psql);

/// An existing database with the wrong owner or encoding blocks provisioning before any change; it is
/// never dropped; `--fix-owner` fixes the owner; the encoding needs the DBA.
fn existing_databases_are_never_dropped(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    block_on(async {
        let c = server.connect("postgres").await;
        c.batch_execute(r#"CREATE DATABASE "QSR" TEMPLATE template0 ENCODING 'UTF8'"#).await.unwrap();
        c.batch_execute(r#"CREATE DATABASE "QSMQ" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"#)
            .await
            .unwrap();
        let qsr = server.connect("QSR").await;
        qsr.batch_execute(r#"CREATE TABLE "Users" ("UserId" text); INSERT INTO "Users" VALUES ('admin');"#)
            .await
            .unwrap();
    });
    let pw = scratch.secret_file("pw", "Owner-pw");
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&pw), 4);
    let err = stderr(&out);
    assert!(err.contains(r#"database "QSR" exists but is owned by "postgres""#), "{err}");
    assert!(err.contains(r#"database "QSMQ" exists with encoding LATIN1"#), "{err}");
    assert!(err.contains("--fix-owner"), "{err}");
    let state = block_on(catalog_state(&server, ROLE));
    assert!(state.roles.is_empty(), "a refused run created the role");
    assert_eq!(state.databases.len(), 2);

    // Drop the LATIN1 one ourselves (qrd never does); --fix-owner then adopts QSR with its data.
    block_on(async { server.connect("postgres").await.batch_execute(r#"DROP DATABASE "QSMQ""#).await.unwrap() });
    run_expect(qrd(&server, &scratch).args(["provision", "--fix-owner", "--repo-password-file"]).arg(&pw), 0);
    let state = block_on(catalog_state(&server, ROLE));
    assert_eq!(state.databases["QSR"].owner, ROLE);
    assert_eq!(state.databases["QSMQ"].encoding, "UTF8");
    let users: i64 = block_on(async {
        server.connect("QSR").await.query_one(r#"SELECT count(*) FROM "Users""#, &[]).await.unwrap().get(0)
    });
    assert_eq!(users, 1, "the existing data survived");
}
every_run!(existing_databases_are_never_dropped);

/// A failure part-way (here: pg_hba.conf rejects the superuser from the new QSR database, so the schema
/// grant cannot connect) stops with the failed step, says what exists, and a re-run after the fix
/// completes the remaining steps only.
fn failure_part_way_reports_state_and_rerun_completes(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let hba = server.data_dir().join("pg_hba.conf");
    let original = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host QSR postgres all reject\n{original}")).unwrap();
    server.reload();

    let pw = scratch.secret_file("pw", "Partway-pw");
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&pw), 5);
    let err = stderr(&out);
    assert!(err.contains(r#"failed (grant ALL on schema public in "QSR""#), "{err}");
    assert!(err.contains("no pg_hba.conf entry") || err.contains("pg_hba.conf rejects"), "{err}");
    assert!(err.contains(r#"now on the server: role "qliksenserepository" exists; "QSR" exists"#), "{err}");
    assert!(err.contains("run qrd provision again"), "{err}");

    std::fs::write(&hba, original).unwrap();
    server.reload();
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&pw), 0);
    assert!(stdout(&out).contains("provisioned: 4 changes"), "only the four schema grants remain: {}", stdout(&out));
    let state = block_on(catalog_state(&server, ROLE));
    assert!(state.databases["QSR"].public_acl_rows.contains(&format!("{ROLE} CREATE")));
}
per_major!(failure_part_way_reports_state_and_rerun_completes: pg16 = 16, pg12 = 12);

/// Only one provisioning at a time: a held lock makes a second run refuse, changing nothing.
fn concurrent_runs_are_refused(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    block_on(async {
        let holder = server.connect("postgres").await;
        holder.batch_execute("SELECT pg_advisory_lock(7434852)").await.unwrap();
        let pw = scratch.secret_file("pw", "Lock-pw");
        let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&pw), 4);
        assert!(stderr(&out).contains("another qrd provision holds the provisioning lock"), "{}", stderr(&out));
        // Advisory locks belong to one database: a run with another -d must still see this one.
        let out = run_expect(
            qrd(&server, &scratch).args(["provision", "-d", "template1", "--repo-password-file"]).arg(&pw),
            4,
        );
        assert!(stderr(&out).contains("another qrd provision holds the provisioning lock"), "{}", stderr(&out));
        assert!(catalog_state(&server, ROLE).await.roles.is_empty());
    });
}
per_major!(concurrent_runs_are_refused: pg16 = 16);

/// Without a password for a new role, and no terminal to ask on, provisioning refuses before any change.
fn new_role_without_password_is_refused(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let out = run_expect(qrd(&server, &scratch).arg("provision").stdin(std::process::Stdio::null()), 4);
    assert!(stderr(&out).contains("needs a password and none was given"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--repo-password-file"), "{}", stderr(&out));
    let empty = scratch.secret_file("empty", "\n");
    let out = run_expect(qrd(&server, &scratch).args(["provision", "--repo-password-file"]).arg(&empty), 4);
    assert!(stderr(&out).contains("empty passwords are refused"), "{}", stderr(&out));
    let state = block_on(catalog_state(&server, ROLE));
    assert!(state.roles.is_empty() && state.databases.is_empty());
}
per_major!(new_role_without_password_is_refused: pg16 = 16);

/// With `password_encryption = md5` the verifier sent is md5 (as the server would store it) and logins
/// work; `qrd check` then warns about it.
fn md5_servers_get_md5_verifiers(major: u32) {
    let server = Server::builder(major).host_auth(HostAuth::Md5).start().unwrap();
    let scratch = Scratch::new();
    provision(&server, &scratch, "Md5-pw");
    let state = block_on(catalog_state(&server, ROLE));
    assert_eq!(state.hash_type.as_deref(), Some("md5"));
    block_on(can_login(&server, "QSR", ROLE, "Md5-pw")).unwrap();
    let out = run_expect(qrd(&server, &scratch).arg("check"), 0);
    assert!(stdout(&out).contains("warn  role.password"), "{}", stdout(&out));
    assert!(stdout(&out).contains("warn  server.password_encryption"), "{}", stdout(&out));
}
per_major!(md5_servers_get_md5_verifiers: pg16 = 16, pg12 = 12);

/// Even the most verbose logging, on both sides, holds neither the password nor its verifier: qrd's `-vv`
/// and `QRD_LOG=trace` (tokio-postgres logs every statement it sends at debug level), and a server that logs
/// every statement (qrd turns statement logging off for its own session around the password step).
fn verbose_logs_hold_no_secret(major: u32) {
    let server = Server::builder(major).setting("log_statement", "all").start().unwrap();
    let scratch = Scratch::new();
    let pw = scratch.secret_file("repo-password", "Very-secret-1");
    let verbose = run_expect(qrd(&server, &scratch).args(["-vv", "provision", "--repo-password-file"]).arg(&pw), 0);
    assert!(stderr(&verbose).contains("running"), "-vv shows qrd's debug log: {}", stderr(&verbose));
    let pw2 = scratch.secret_file("repo-password-2", "Very-secret-2");
    let traced = run_expect(
        qrd(&server, &scratch).env("QRD_LOG", "trace").args(["provision", "--repo-password-file"]).arg(&pw2),
        0,
    );
    let server_log = server.log();
    assert!(server_log.contains("GRANT"), "the server logs statements: {server_log}");
    for (what, text) in [("qrd -vv", stderr(&verbose)), ("QRD_LOG=trace", stderr(&traced)), ("server log", server_log)]
    {
        for secret in ["Very-secret", "SCRAM-SHA-256$", "md5"] {
            assert!(!text.contains(secret), "{what} contains {secret:?}:\n{text}");
        }
    }
}
per_major!(verbose_logs_hold_no_secret: pg16 = 16, pg12 = 12);
