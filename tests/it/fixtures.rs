//! The test site of `sql/fixtures/` on servers provisioned by `qrd provision`: it loads on every supported
//! major as the repository role, everything it creates is owned by that role, QSR says the old host name
//! where a restore onto a new host must change it, its names are case-sensitive, and the generator grows QSR
//! to a target size with most bytes in the wide tables.

use qrd_testcontainers::fixtures::{self, CENTRAL_HOST, SHARE_ROOT, Scale, WIDE_TABLES};
use tokio_postgres::error::SqlState;

use crate::common::{DATABASES, ROLE, Scratch, Server, all_majors, block_on, per_major, provision};

/// Every table of every non-system schema of `db`, with its owner, as `schema.table owner`.
async fn table_owners(server: &Server, db: &str) -> Vec<(String, String)> {
    let c = server.connect(db).await;
    c.query(
        "SELECT format('%I.%I', schemaname, tablename), tableowner::text FROM pg_tables
          WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn site_loads(major: u32) {
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Fixture-pw-1");
    fixtures::load_site(&server, Scale::Seed).unwrap_or_else(|e| panic!("{e}"));

    block_on(async {
        // Ownership, as pg_tables says: every table of the four databases belongs to the repository role.
        for db in DATABASES {
            let owners = table_owners(&server, db).await;
            assert!(!owners.is_empty(), "{db} has no tables");
            let foreign: Vec<_> = owners.iter().filter(|(_, owner)| owner != ROLE).collect();
            assert!(foreign.is_empty(), "{db}: tables not owned by {ROLE}: {foreign:?}");
        }
        let qsr = server.connect("QSR").await;
        let public_tables: i64 = qsr
            .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1", &[&ROLE])
            .await
            .unwrap()
            .get(0);
        assert!(public_tables >= 40, "QSR has {public_tables} tables of {ROLE} in public");

        // The host name a restore onto another machine must change: the central node and LocalConfigs.
        let central: Vec<String> = qsr
            .query(r#"SELECT "HostName" FROM "ServerNodeConfigurations" WHERE "IsCentral""#, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(central, [CENTRAL_HOST]);
        let local: Vec<String> = qsr
            .query(r#"SELECT "HostName" FROM "LocalConfigs" WHERE lower("HostName") = $1 ORDER BY 1"#, &[&CENTRAL_HOST])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(local, ["QLIK-CENTRAL.example.local", CENTRAL_HOST], "one of them in capitals");

        // The shared persistence folders are UNC paths on the old machine.
        let row = qsr
            .query_one(
                r#"SELECT "RootFolder", "AppFolder", "StaticContentRootFolder", "Connector32RootFolder",
                          "Connector64RootFolder", "ArchivedLogsRootFolder"
                     FROM "ServiceClusterSettingsSharedPersistenceProperties""#,
                &[],
            )
            .await
            .unwrap();
        for i in 0..row.len() {
            let path: String = row.get(i);
            assert!(path.starts_with(SHARE_ROOT), "{}: {path}", row.columns()[i].name());
        }
        assert_eq!(row.get::<_, String>(1), r"\\qlik-central\QlikShare\Apps");

        // One RootAdmin; names that need quoting arrive intact.
        let admins: Vec<String> = qsr
            .query(r#"SELECT "UserDirectory" || '\' || "UserId" FROM "Users" WHERE "RolesString" = 'RootAdmin'"#, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(admins, [r"EXAMPLE\qlikadmin"]);
        let names: i64 = qsr
            .query_one(
                r#"SELECT count(*) FROM "Users" WHERE "Name" IN ('Seán O''Brien', 'Jane "JD" Doe', '山田 太郎')"#,
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(names, 3);

        // The names are case-sensitive: quoted they exist, folded to lower case they do not.
        let nodes: i64 = qsr.query_one(r#"SELECT count(*) FROM "ServerNodeConfigurations""#, &[]).await.unwrap().get(0);
        assert_eq!(nodes, 2);
        let err = qsr.query_one("SELECT count(*) FROM ServerNodeConfigurations", &[]).await.unwrap_err();
        let db_err = err.as_db_error().unwrap_or_else(|| panic!("expected the server's error, got {err:?}"));
        assert_eq!(db_err.code(), &SqlState::UNDEFINED_TABLE, "{db_err:?}");
        assert_eq!(db_err.message(), r#"relation "servernodeconfigurations" does not exist"#);

        // The execution history links results to their details and says where the script logs are.
        let orphans: i64 = qsr
            .query_one(
                r#"SELECT count(*) FROM "ExecutionResults" r
                    WHERE NOT EXISTS (SELECT FROM "ExecutionResultDetailExecutionResults" j
                                       WHERE j."ExecutionResult_ID" = r."ID")
                       OR NOT starts_with("ScriptLogLocation", '\\qlik-central\QlikShare\ArchivedLogs\')"#,
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(orphans, 0);
    });
}
all_majors!(site_loads);

/// `qsr_scale.sql` to 32 MiB: `pg_database_size('QSR')` within ±15 % of it, most of the bytes in the wide
/// tables. On 16 and on 12, the oldest major (COMMIT inside DO, multi-table VACUUM).
fn scales_to_a_target(major: u32) {
    const TARGET_MIB: u32 = 32;
    let server = Server::start(major);
    let scratch = Scratch::new();
    provision(&server, &scratch, "Fixture-pw-1");
    let started = std::time::Instant::now();
    fixtures::load_site(&server, Scale::QsrMib(TARGET_MIB)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("PostgreSQL {major}: site loaded and QSR grown to {TARGET_MIB} MiB in {:?}", started.elapsed());

    block_on(async {
        let qsr = server.connect("QSR").await;
        let row = qsr
            .query_one(
                "SELECT pg_database_size('QSR'),
                        (SELECT sum(pg_total_relation_size(format('%I.%I', schemaname, tablename)))::int8
                           FROM pg_tables WHERE schemaname = 'public'),
                        (SELECT sum(pg_total_relation_size(format('%I', t)))::int8 FROM unnest($1::text[]) t)",
                &[&WIDE_TABLES.to_vec()],
            )
            .await
            .unwrap();
        let (size, tables, wide): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let target = i64::from(TARGET_MIB) * 1024 * 1024;
        eprintln!("QSR {size} bytes (target {target}), tables {tables}, wide tables {wide}");
        assert!((size - target).abs() * 100 <= target * 15, "QSR is {size} bytes, target {target} ± 15 %");
        // ~92 % and ~69 % at 32 MiB; the rest is the seed's other tables and the system catalogs (~8 MiB).
        assert!(wide * 100 >= tables * 80, "wide tables hold {wide} of the tables' {tables} bytes");
        assert!(wide * 2 >= size, "wide tables hold {wide} of the database's {size} bytes");

        // Every generated row belongs to a real parent: the loops' ids line up.
        let owners = table_owners(&server, "QSR").await;
        assert!(owners.iter().all(|(_, owner)| owner == ROLE), "{owners:?}");
        let runs: i64 = qsr
            .query_one(
                r#"SELECT count(*) FROM "ExecutionResults" r JOIN "ExecutionSessions" s ON s."ID" = r."ExecutionID""#,
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let results: i64 = qsr.query_one(r#"SELECT count(*) FROM "ExecutionResults""#, &[]).await.unwrap().get(0);
        assert_eq!(runs, results, "every result has its session");
        assert!(results > 1000, "{results} results");
    });
}
per_major!(scales_to_a_target: pg16 = 16, pg12 = 12);
