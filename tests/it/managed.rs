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
