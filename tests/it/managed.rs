//! A managed server's admin (Amazon RDS, Azure, Cloud SQL): a login role with CREATEROLE and CREATEDB,
//! granted `pg_read_all_settings` and `pg_monitor` as the providers do, that is no superuser and so reads
//! neither `pg_authid` nor pg_hba.conf. Provision, backup, restore onto a second such server, drill and
//! check all run as that role; the assertions read the catalogs as the real superuser.

use std::process::Command;

use crate::common::*;

const ADMIN: &str = "dba";
const ADMIN_PW: &str = "Dba-admin-pw-1";
const REPO_PW: &str = "Repo-managed-pw-1";

/// The admin role, made the way the providers make theirs.
fn managed_admin(server: &Server) {
    exec(
        server,
        &format!(
            "CREATE ROLE {ADMIN} LOGIN CREATEROLE CREATEDB PASSWORD '{ADMIN_PW}';
             GRANT pg_read_all_settings, pg_monitor TO {ADMIN}"
        ),
    );
}

/// qrd connecting as the admin.
fn qrd_admin(server: &Server, scratch: &Scratch) -> Command {
    let mut cmd = qrd(server, scratch);
    cmd.env("PGUSER", ADMIN).env("PGPASSWORD", ADMIN_PW);
    cmd
}

fn provision_as_admin(server: &Server, scratch: &Scratch) -> std::process::Output {
    let pw = scratch.secret_file("repo-password", REPO_PW);
    run_expect(qrd_admin(server, scratch).arg("provision").arg("--repo-password-file").arg(pw), 0)
}

/// The admin's memberships in the repository role: `grantor admin inherit set` per row (16 records the
/// options per membership; before 16 they are `- - -`).
fn admin_memberships(server: &Server) -> Vec<String> {
    let sql = if server.major() >= 16 {
        "SELECT g.rolname || ' ' || am.admin_option || ' ' || am.inherit_option || ' ' || am.set_option"
    } else {
        "SELECT g.rolname || ' ' || am.admin_option || ' - -'"
    };
    block_on(async {
        let c = server.connect("postgres").await;
        c.query(
            &format!(
                "{sql} FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid
                   JOIN pg_roles m ON m.oid = am.member JOIN pg_roles g ON g.oid = am.grantor
                  WHERE r.rolname = $1 AND m.rolname = $2 ORDER BY 1"
            ),
            &[&ROLE, &ADMIN],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    })
}

/// `qrd provision` as the admin: the guide's objects, the repository role granted to the admin (so it may
/// own and grant: SET and INHERIT on 16, where its CREATE ROLE gave it ADMIN OPTION only), the database
/// grants made by the owner, the public-schema grant where a non-superuser can make it (16 through the
/// owner; 15 through a role that inherits for one transaction; before 15 the schema is the bootstrap
/// superuser's and PUBLIC may create there). A second run, with or without the password, changes nothing —
/// not even the verifier's salt, known without pg_authid by a login as the role.
fn provision_works_as_a_managed_admin(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    managed_admin(&server);
    let out = provision_as_admin(&server, &scratch);
    assert!(stdout(&out).contains("provisioned:"), "{}", stdout(&out));

    let state = block_on(catalog_state(&server, ROLE));
    assert_eq!(state.roles[ROLE], "t f f f f f infinity", "the guide's attributes");
    assert_eq!(state.hash_type.as_deref(), Some("SCRAM-SHA-256"));
    // 16 records its CREATE ROLE's membership (ADMIN OPTION only) and provision's (SET, INHERIT) apart.
    let rows = if major >= 16 { 2 } else { 1 };
    assert_eq!(state.memberships, vec![format!("{ROLE} -> {ADMIN}"); rows]);
    let mut expected_memberships: Vec<String> = if major >= 16 {
        // Its CREATE ROLE's (recorded as the bootstrap superuser's), and the one provision made.
        vec![format!("{ADMIN} false true true"), format!("{} true false false", server.superuser())]
    } else {
        vec![format!("{ADMIN} false - -")]
    };
    expected_memberships.sort();
    assert_eq!(admin_memberships(&server), expected_memberships);
    for db in DATABASES {
        let d = &state.databases[db];
        assert_eq!((d.encoding.as_str(), d.owner.as_str()), ("UTF8", ROLE), "{db}");
        for expected in [
            "PUBLIC CONNECT by qliksenserepository",
            "PUBLIC TEMPORARY by qliksenserepository",
            "dba CREATE by qliksenserepository",
            "dba CONNECT by qliksenserepository",
            "dba TEMPORARY by qliksenserepository",
            "qliksenserepository CREATE by qliksenserepository",
        ] {
            assert!(d.acl_rows.iter().any(|r| r == expected), "{db}: missing {expected:?} in {:?}", d.acl_rows);
        }
        let explicit = d.public_acl_rows.contains(&format!("{ROLE} CREATE"));
        assert_eq!(explicit, major >= 15, "{db}: {:?}", d.public_acl_rows);
    }
    // Qlik's services work: a table in public of each database, owned by the role.
    block_on(async {
        for db in DATABASES {
            let c = server.try_connect_tcp(server.host(), db, ROLE, REPO_PW).await.unwrap();
            c.batch_execute(
                r#"CREATE TABLE public."Apps" ("ID" int PRIMARY KEY); INSERT INTO public."Apps" VALUES (1)"#,
            )
            .await
            .unwrap_or_else(|e| panic!("{db}: {:?}", e.as_db_error()));
        }
    });

    let verifier = || q1(&server, "SELECT rolpassword FROM pg_authid WHERE rolname = 'qliksenserepository'");
    let before = (block_on(catalog_state(&server, ROLE)), verifier(), admin_memberships(&server));
    let out = provision_as_admin(&server, &scratch);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    let out = run_expect(qrd_admin(&server, &scratch).arg("provision"), 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    let after = (block_on(catalog_state(&server, ROLE)), verifier(), admin_memberships(&server));
    assert_eq!(before, after);

    // qrd check: what the admin cannot read is skipped, not failed; it exits 0 on the provisioned site and
    // leaves no permission error in the server log.
    let out = run_expect(qrd_admin(&server, &scratch).args(["check", "--json"]), 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let with = |status: &str| -> Vec<String> {
        let checks = report["checks"].as_array().unwrap();
        checks.iter().filter(|c| c["status"] == status).map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(with("skip"), ["role.password", "auth.md5_hashes", "auth.hba_md5", "auth.hba_tcp"], "{report:#}");
    assert!(with("fail").is_empty(), "{report:#}");
    assert_eq!(report["summary"]["skip"], 4);
    assert_eq!(report["schema_version"], 1);
    let granted = report["checks"].as_array().unwrap().iter().find(|c| c["id"] == "role.granted").unwrap();
    assert_eq!(granted["status"], "ok", "{granted}");
    let out = run_expect(qrd_admin(&server, &scratch).arg("check"), 0);
    assert!(stdout(&out).contains(", 4 skip (not readable with these rights)"), "{}", stdout(&out));
    let log = server.log();
    assert!(!log.contains("permission denied"), "qrd check as the admin left errors in the server log:\n{log}");

    // A new password is set (and known to be new by the failed login with the old one's route).
    let pw = scratch.secret_file("new-password", "Repo-managed-pw-2");
    let out = run_expect(qrd_admin(&server, &scratch).arg("provision").arg("--repo-password-file").arg(pw), 0);
    assert!(stdout(&out).contains("set the password of role"), "{}", stdout(&out));
    block_on(can_login(&server, "QSR", ROLE, "Repo-managed-pw-2")).unwrap();
}
all_majors!(provision_works_as_a_managed_admin);

/// Every table of `db` with its owner and row count, as the superuser sees them.
fn tables(server: &Server, db: &str) -> Vec<(String, String, i64)> {
    block_on(async {
        let c = server.connect(db).await;
        let rows = c
            .query(
                "SELECT format('%I.%I', schemaname, tablename), tableowner::text FROM pg_tables
                  WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        for r in rows {
            let (name, owner): (String, String) = (r.get(0), r.get(1));
            let n: i64 = c.query_one(&format!("SELECT count(*) FROM {name}"), &[]).await.unwrap().get(0);
            out.push((name, owner, n));
        }
        out
    })
}

/// The whole DR journey on managed servers: `qrd backup` as the admin dumps the roles without their
/// verifiers (pg_authid is not readable) and says so in its output and the manifest; `qrd restore` onto a
/// second managed server as its admin creates the roles without what only a superuser may say, the
/// databases owned by the repository role with every table owned by it and holding the rows of the
/// source, and sets the repository role's password from the one given; `qrd drill` there runs as the
/// admin too (without pg_amcheck, saying why) and leaves no scratch database. Without a password the
/// restore creates the role without one and says what to run.
fn backup_restore_and_drill_as_managed_admins(major: u32) {
    let source = Server::start(major);
    let scratch = Scratch::new();
    managed_admin(&source);
    provision_as_admin(&source, &scratch);
    qrd_testcontainers::fixtures::load_site(&source, qrd_testcontainers::fixtures::Scale::Seed).unwrap();
    // What only a superuser may say about roles (made by the source's real superuser): a replication role
    // the repository role is a member of, a setting only a superuser may make, and one anyone may.
    exec(
        &source,
        "CREATE ROLE qlik_audit NOLOGIN REPLICATION; GRANT qlik_audit TO qliksenserepository;
         ALTER ROLE qliksenserepository SET log_statement = 'none';
         ALTER ROLE qliksenserepository SET work_mem = '8MB'",
    );
    let tools = source.installation().client_bin.clone();

    let dir = scratch.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let out =
        run_expect(qrd_admin(&source, &scratch).args(["backup", "--out"]).arg(&dir).arg("--pg-bin-dir").arg(&tools), 0);
    assert!(stdout(&out).contains("roles without their passwords"), "{}", stdout(&out));
    assert!(stderr(&out).contains("may not read pg_authid"), "{}", stderr(&out));
    let bundle = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    let manifest = qrd_backup::bundle::read_manifest(&bundle).unwrap();
    assert!(manifest.globals.as_ref().unwrap().no_role_passwords, "{:?}", manifest.globals);
    let unpacked = scratch.path().join("unpacked");
    qrd_backup::bundle::extract(&bundle, &unpacked).unwrap();
    let globals = std::fs::read_to_string(unpacked.join("globals.sql")).unwrap();
    assert!(globals.contains("CREATE ROLE qliksenserepository;") && !globals.contains("PASSWORD"), "{globals}");

    // Restored onto a second managed server as its admin, with the repository role's password.
    let target = Server::start(major);
    managed_admin(&target);
    let pw = scratch.secret_file("repo-password", REPO_PW);
    let out = run_expect(
        qrd_admin(&target, &scratch)
            .arg("restore")
            .arg(&bundle)
            .arg("--repo-password-file")
            .arg(&pw)
            .arg("--pg-bin-dir")
            .arg(&tools),
        0,
    );
    assert!(stdout(&out).contains("password of role \"qliksenserepository\" set"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("role \"qlik_audit\" is restored without REPLICATION"), "{err}");
    assert!(!err.contains("\"postgres\" is restored without"), "an existing role is left alone: {err}");
    assert!(err.contains("skipped `ALTER ROLE qliksenserepository …`"), "{err}");
    let state = block_on(catalog_state(&target, ROLE));
    assert_eq!(state.roles[ROLE], "t f f f f f infinity");
    assert_eq!(
        q1(&target, "SELECT rolreplication::text FROM pg_roles WHERE rolname = 'qlik_audit'").as_deref(),
        Some("false")
    );
    assert!(state.memberships.contains(&format!("qlik_audit -> {ROLE}")), "{:?}", state.memberships);
    let settings = q1(
        &target,
        "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting
          WHERE setrole = 'qliksenserepository'::regrole AND setdatabase = 0",
    );
    assert_eq!(settings.as_deref(), Some("work_mem=8MB"), "the superuser-only setting is skipped");
    assert_eq!(state.hash_type.as_deref(), Some("SCRAM-SHA-256"));
    for db in DATABASES {
        assert_eq!(state.databases[db].owner, ROLE, "{db}");
        let (restored, original) = (tables(&target, db), tables(&source, db));
        assert!(!restored.is_empty(), "{db}");
        assert!(restored.iter().all(|(_, owner, _)| owner == ROLE), "{db}: {restored:?}");
        assert_eq!(restored, original, "{db}: owners and row counts as on the source");
    }
    block_on(async {
        let c = target.try_connect_tcp(target.host(), "QSR", ROLE, REPO_PW).await.unwrap();
        c.batch_execute(r#"INSERT INTO public."Users" SELECT * FROM public."Users" LIMIT 0"#).await.unwrap();
    });

    // --clean as the admin: the database replaced by the bundle's, swapped in, the old one dropped.
    exec(&target, "REVOKE CONNECT ON DATABASE \"SenseServices\" FROM PUBLIC");
    let out = run_expect(
        qrd_admin(&target, &scratch)
            .args(["restore", "--clean", "--drop-old", "--database", "SenseServices"])
            .arg(&bundle)
            .arg("--pg-bin-dir")
            .arg(&tools),
        0,
    );
    assert!(stdout(&out).contains("replaced (the previous one dropped)"), "{}", stdout(&out));
    assert_eq!(tables(&target, "SenseServices"), tables(&source, "SenseServices"));
    let acl = block_on(catalog_state(&target, ROLE)).databases["SenseServices"].acl_rows.clone();
    assert!(!acl.iter().any(|r| r.starts_with("PUBLIC CONNECT")), "the replaced database's privileges: {acl:?}");

    // A drill there, as the admin.
    let out = run_expect(
        qrd_admin(&target, &scratch).args(["drill", "--json"]).arg(&bundle).arg("--pg-bin-dir").arg(&tools),
        0,
    );
    let drill: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drilled = drill["databases"].as_array().unwrap();
    assert_eq!(drilled.len(), 4, "{drill:#}");
    for d in drilled {
        assert!(d["rows"].as_u64().unwrap() > 0 || d["name"] != "QSR", "{d}");
        let amcheck = d["amcheck"].as_str().unwrap();
        assert!(amcheck.starts_with("not run:"), "{amcheck}");
    }
    let left = q1(&target, "SELECT count(*)::text FROM pg_database WHERE datname LIKE 'qrd_drill_%'");
    assert_eq!(left.as_deref(), Some("0"));

    // Without a password: the role is created without one, and the output says what to run.
    let bare = Server::start(major);
    managed_admin(&bare);
    let out = run_expect(
        qrd_admin(&bare, &scratch)
            .arg("restore")
            .arg(&bundle)
            .arg("--database")
            .arg("Licenses")
            .arg("--pg-bin-dir")
            .arg(&tools),
        0,
    );
    let text = stdout(&out);
    assert!(text.contains("has no password") && text.contains("run `qrd password set qliksenserepository`"), "{text}");
    assert_eq!(block_on(catalog_state(&bare, ROLE)).hash_type, None);
    assert_eq!(tables(&bare, "Licenses"), tables(&source, "Licenses"));
    // Which works as the admin: the verifier computed here, proven by a login; the same again is nothing.
    let set = |expect: &str| {
        let mut cmd = qrd_admin(&bare, &scratch);
        cmd.args(["password", "set", ROLE, "--new-password-file"]).arg(&pw);
        let out = run_expect(&mut cmd, 0);
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    };
    set("verified: role \"qliksenserepository\" logs in with the password");
    assert_eq!(block_on(catalog_state(&bare, ROLE)).hash_type.as_deref(), Some("SCRAM-SHA-256"));
    set("already has this password, a login with it works: nothing to do");

    // A site whose repository role and databases a superuser made, not granted to the admin: its backup is
    // refused before anything runs (pg_dump would stop at the first table), naming the grant. On 16 an
    // admin may grant and alter only roles it holds ADMIN OPTION on: provision is refused before any
    // change, and a restore says which grant it needs.
    let other = Server::start(major);
    managed_admin(&other);
    exec(&other, "CREATE ROLE qliksenserepository LOGIN NOINHERIT");
    for db in DATABASES {
        exec(&other, &format!("CREATE DATABASE \"{db}\" OWNER qliksenserepository"));
    }
    let out =
        run_expect(qrd_admin(&other, &scratch).args(["backup", "--out"]).arg(&dir).arg("--pg-bin-dir").arg(&tools), 4);
    let err = stderr(&out);
    assert!(
        err.contains("\"dba\" is no superuser and does not have the privileges of \"qliksenserepository\", which owns"),
        "{err}"
    );
    assert!(err.contains("`qrd provision` does it"), "{err}");
    if major >= 16 {
        let pw = scratch.secret_file("other-password", REPO_PW);
        let out = run_expect(qrd_admin(&other, &scratch).arg("provision").arg("--repo-password-file").arg(&pw), 4);
        assert!(stderr(&out).contains("holds none on \"qliksenserepository\""), "{}", stderr(&out));
        let out = run_expect(
            qrd_admin(&other, &scratch)
                .arg("restore")
                .arg(&bundle)
                .arg("--database")
                .arg("Licenses")
                .arg("--pg-bin-dir")
                .arg(&tools),
            5,
        );
        let err = stderr(&out);
        assert!(err.contains("failed to grant role \"qliksenserepository\" to \"dba\""), "{err}");
        assert!(err.contains("GRANT \"qliksenserepository\" TO \"dba\", then run the restore again"), "{err}");
        assert!(tables(&other, "Licenses").is_empty(), "nothing was restored");
    }
}
every_run!(backup_restore_and_drill_as_managed_admins);
