//! Hostile input: role names and passwords with quotes, backslashes, `$$`, unicode, SQL fragments and
//! 1000 characters work exactly and inject nothing; over-long names are refused, not truncated.

use crate::common::*;

const NASTY_ROLES: [&str; 5] = [
    r#"q"uote'd\back$$ü"#,
    r#"x"; DROP DATABASE postgres; --"#,
    "Ünïcødé ロール 🐘",
    "$$;SELECT 1;$$",
    // Line breaks, a blank line and a comment marker inside the name: nothing may treat them as SQL layout.
    "nl\n\n-- not a comment\n;role",
];

fn nasty_password() -> String {
    // 1000 characters: quotes, backslashes, dollar quotes, SQL, spaces, unicode (NFKC-stable).
    let unit = r#"p'"\$$;--x ü€ロ DROP ROLE postgres; \\' E'\x' "#;
    unit.chars().cycle().take(1000).collect()
}

/// One role at a time on its own server: exact name in pg_roles, owner of the four databases, login with
/// the exact password, `postgres` database and role untouched, check passes.
fn hostile_role_end_to_end(major: u32, role: &str) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    let password = nasty_password();
    let pw = scratch.secret_file("pw", &password);
    run_expect(qrd(&server, &scratch).args(["provision", "--repo-user", role, "--repo-password-file"]).arg(&pw), 0);
    let state = block_on(catalog_state(&server, role));
    assert_eq!(state.roles.keys().collect::<Vec<_>>(), vec![role], "the role name was altered");
    assert_eq!(state.databases.len(), 4);
    for db in state.databases.values() {
        assert_eq!(db.owner, role);
        assert!(db.public_acl_rows.contains(&format!("{role} CREATE")), "{:?}", db.public_acl_rows);
    }
    block_on(async {
        can_login(&server, "QSR", role, &password).await.unwrap();
        let c = server.connect("postgres").await;
        let n: i64 =
            c.query_one("SELECT count(*) FROM pg_database WHERE datname = 'postgres'", &[]).await.unwrap().get(0);
        assert_eq!(n, 1, "an injected statement ran");
        let superuser: bool =
            c.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'", &[]).await.unwrap().get(0);
        assert!(superuser);
    });
    run_expect(qrd(&server, &scratch).args(["check", "--repo-user", role]), 0);
    let out =
        run_expect(qrd(&server, &scratch).args(["provision", "--repo-user", role, "--repo-password-file"]).arg(&pw), 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}

fn hostile_roles(major: u32) {
    for role in NASTY_ROLES {
        hostile_role_end_to_end(major, role);
    }
}
every_run!(hostile_roles);

fn hostile_role_md5(major: u32) {
    // md5 salts with the role name: a hostile name must still give a working verifier.
    let server = Server::builder(major).host_auth(HostAuth::Md5).start().unwrap();
    let scratch = Scratch::new();
    let role = NASTY_ROLES[0];
    let password = nasty_password();
    let pw = scratch.secret_file("pw", &password);
    run_expect(qrd(&server, &scratch).args(["provision", "--repo-user", role, "--repo-password-file"]).arg(&pw), 0);
    assert_eq!(block_on(catalog_state(&server, role)).hash_type.as_deref(), Some("md5"));
    block_on(can_login(&server, "QSR", role, &password)).unwrap();
}
per_major!(hostile_role_md5: pg16 = 16, pg14 = 14);

#[test]
fn over_long_role_name_is_refused_not_truncated() {
    let server = Server::start(16);
    let scratch = Scratch::new();
    let pw = scratch.secret_file("pw", "Long-pw");
    let long = "r".repeat(64);
    let out = run_expect(
        qrd(&server, &scratch).args(["provision", "--repo-user", &long, "--repo-password-file"]).arg(&pw),
        4,
    );
    assert!(stderr(&out).contains("would silently truncate it to 63 bytes"), "{}", stderr(&out));
    let state = block_on(catalog_state(&server, &long[..63]));
    assert!(state.roles.is_empty() && state.databases.is_empty());
}
