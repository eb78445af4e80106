//! The fixture helper itself: provisioning with the guide's script, the older site's QLogs database and its
//! roles, and failures that say what went wrong (psql's own error) and what to do next.

use qrd_testcontainers::Server;
use qrd_testcontainers::fixtures::{self, DATABASES, QLOGS, QLOGS_ROLES, REPO_ROLE, Scale, Site};

async fn owners(server: &Server, db: &str) -> Vec<String> {
    let c = server.connect(db).await;
    c.query(
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// On a server provisioned with the guide's script: the four databases' tables belong to the repository role,
/// QLogs's to qlogs_writer, with SELECT for qlogs_reader; the guide's password is the role's.
async fn guide_provisioned_site_with_qlogs(major: u32) {
    let server = Server::start(major);
    // A password psql's quoting must carry: quotes, a backslash, a space.
    let password = r"it's a \ pass";
    fixtures::provision_like_guide(&server, password).unwrap_or_else(|e| panic!("{e}"));
    Site::new().qlogs(true).load(&server).unwrap_or_else(|e| panic!("{e}"));

    for db in DATABASES {
        assert_eq!(owners(&server, db).await, [REPO_ROLE], "{db}");
    }
    assert_eq!(owners(&server, QLOGS).await, ["qlogs_writer"]);
    let c = server.connect("postgres").await;
    let roles: Vec<String> = c
        .query("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'qlogs%' AND rolcanlogin ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(roles, QLOGS_ROLES);
    let qlogs = server.connect(QLOGS).await;
    let readable: bool = qlogs
        .query_one("SELECT has_table_privilege('qlogs_reader', 'public.log_entries', 'SELECT')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(readable);

    let tcp = server
        .try_connect_tcp(server.host(), "QSR", REPO_ROLE, password)
        .await
        .unwrap_or_else(|e| panic!("the guide's password should log the role in: {e:?}"));
    let who: String = tcp.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(who, REPO_ROLE);
}

#[tokio::test]
async fn fixtures_guide_provisioned_site_with_qlogs_pg16() {
    guide_provisioned_site_with_qlogs(16).await;
}

#[tokio::test]
async fn fixtures_guide_provisioned_site_with_qlogs_pg14() {
    guide_provisioned_site_with_qlogs(14).await;
}

/// Unprovisioned: refused before psql runs, with the next step. Loaded twice: psql's error, the script,
/// the hint; and the first load is still whole (each script is one transaction).
#[tokio::test]
async fn fixtures_failures_say_why() {
    let server = Server::start(16);
    let err = fixtures::load_site(&server, Scale::Seed).unwrap_err().to_string();
    assert!(err.contains(r#"the repository role "qliksenserepository" does not exist"#), "{err}");
    assert!(err.contains("hint: provision the server first"), "{err}");

    fixtures::provision_like_guide(&server, "Repo-pw-1").unwrap_or_else(|e| panic!("{e}"));
    fixtures::load_site(&server, Scale::Seed).unwrap_or_else(|e| panic!("{e}"));
    let err = fixtures::load_site(&server, Scale::Seed).unwrap_err().to_string();
    assert!(err.contains("failed to load sql/fixtures/qsr_schema.sql into \"QSR\""), "{err}");
    assert!(err.contains(r#"relation "__MigrationHistory" already exists"#), "{err}");
    assert!(err.contains("hint: load a site once per server"), "{err}");
    let c = server.connect("QSR").await;
    let nodes: i64 = c.query_one(r#"SELECT count(*) FROM "ServerNodeConfigurations""#, &[]).await.unwrap().get(0);
    assert_eq!(nodes, 2);

    // A script run by hand in the wrong database refuses, naming the right one.
    let out = server.psql("postgres").arg("-f").arg(fixtures::script("qsr_seed.sql")).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"qsr_seed.sql belongs in database "QSR", not "postgres""#), "{stderr}");
}
