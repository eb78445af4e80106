//! Inventories of typical servers, for unit tests of plans and checks (here and in qrd-check) without a
//! server. Not part of qrd's interface.

use qrd_pgbin::PgVersion;

use crate::inventory::{AclEntry, DbInfo, Inventory, RoleInfo, SchemaInfo, StoredPassword};
use crate::password::Secret;
use crate::password::verifier::{self, Encryption, HashType};
use crate::spec::{RepoSpec, RoleAttrs};

/// The guide's repository role.
pub const ROLE: &str = "qliksenserepository";

/// A server with nothing of Qlik's on it (superuser connection, SCRAM, ssl off).
pub fn bare_server(major: u32) -> Inventory {
    Inventory {
        version: PgVersion::from_version_num(major * 10000 + 1),
        version_text: format!("{major}.1"),
        listen_addresses: "localhost".into(),
        port: 4432,
        ..Inventory::empty_cluster(major, "postgres", "scram-sha-256")
    }
}

fn acl(grantee: Option<&str>, privs: &[&str]) -> Vec<AclEntry> {
    privs
        .iter()
        .map(|p| AclEntry {
            grantee: grantee.map(str::to_owned),
            grantor: ROLE.into(),
            privilege: (*p).into(),
            grantable: false,
        })
        .collect()
}

/// What a complete provisioning leaves, as an inventory, with the password `pw`.
pub fn provisioned(major: u32, pw: &str) -> Inventory {
    let mut inv = bare_server(major);
    inv.role = Some(RoleInfo {
        name: ROLE.into(),
        attrs: RoleAttrs::EXPECTED,
        valid_until: Some("infinity".into()),
        expired: false,
        granted_to_current_user: true,
        admin_option: false,
        login_with_password: None,
        password: Some(StoredPassword {
            hash_type: HashType::ScramSha256,
            verifier: Some(Secret::new(verifier::compute(Encryption::ScramSha256, &Secret::new(pw), ROLE))),
        }),
    });
    inv.databases = RepoSpec::new(ROLE)
        .databases
        .iter()
        .map(|db| DbInfo {
            name: db.clone(),
            encoding: "UTF8".into(),
            owner: ROLE.into(),
            allow_conn: true,
            acl_is_default: false,
            acl: [
                acl(None, &["TEMPORARY", "CONNECT"]),
                acl(Some("postgres"), &["CREATE", "TEMPORARY", "CONNECT"]),
                acl(Some(ROLE), &["CREATE", "TEMPORARY", "CONNECT"]),
            ]
            .concat(),
            public_schema: Some(SchemaInfo {
                owner: "pg_database_owner".into(),
                acl_is_default: false,
                acl: Vec::new(),
                role_usage: Some(true),
                role_create: Some(true),
                role_explicit: vec!["USAGE".into(), "CREATE".into()],
            }),
            unreachable: None,
        })
        .collect();
    inv
}

/// A managed server (Amazon RDS, Azure, Cloud SQL) as its admin role `dba` sees it: CREATEROLE and CREATEDB,
/// no superuser, so no stored verifiers and no pg_hba.conf.
pub fn managed(inv: Inventory) -> Inventory {
    let mut inv = inv;
    inv.current_user = "dba".into();
    inv.is_superuser = false;
    inv.hba_text = None;
    inv.login_roles = None;
    if let Some(role) = inv.role.as_mut() {
        role.password = None;
        role.admin_option = true;
    }
    for db in &mut inv.databases {
        for e in &mut db.acl {
            if e.grantee.as_deref() == Some("postgres") {
                e.grantee = Some("dba".into());
            }
        }
    }
    inv
}
