//! The checks, in the order they are reported. Later features add entries here.

use qrd_pg::inventory::DbInfo;
use qrd_pg::spec::{RoleAttrs, SUPPORTED_MAJORS};
use qrd_pg::verifier::HashType;

use crate::{Context, Finding};

/// A registered check: a stable id prefix, what it verifies, and the function producing its findings.
pub struct CheckDef {
    pub id: &'static str,
    pub about: &'static str,
    pub run: fn(&Context<'_>) -> Vec<Finding>,
}

pub static CHECKS: &[CheckDef] = &[
    CheckDef { id: "server.version", about: "the server's major version is one qrd supports (12–16)", run: version },
    CheckDef { id: "role", about: "the repository role exists with the guide's attributes and a password", run: role },
    CheckDef {
        id: "database",
        about: "the four Qlik databases: exist, UTF8, owner, privileges, schema public",
        run: databases,
    },
    CheckDef {
        id: "server.password_encryption",
        about: "new passwords are stored as SCRAM-SHA-256",
        run: password_encryption,
    },
    CheckDef { id: "server.ssl", about: "the server offers TLS", run: ssl },
    CheckDef {
        id: "client-tools",
        about: "pg_dump/pg_restore fitting the server's major are installed here",
        run: client_tools,
    },
];

fn provision_hint(ctx: &Context<'_>) -> String {
    if ctx.spec.role == qrd_pg::spec::DEFAULT_REPO_ROLE {
        "run `qrd provision`".to_owned()
    } else {
        format!("run `qrd provision --repo-user {}`", ctx.spec.role)
    }
}

fn version(ctx: &Context<'_>) -> Vec<Finding> {
    let v = &ctx.inventory.version;
    let id = "server.version";
    if SUPPORTED_MAJORS.contains(&v.major) {
        let note = if v.major == 14 { " (the major Qlik bundles, 14.17)" } else { "" };
        vec![Finding::ok(id, format!("PostgreSQL {v}{note} is supported"))]
    } else {
        vec![Finding::fail(
            id,
            format!(
                "PostgreSQL {v} is not supported (supported: {}–{})",
                SUPPORTED_MAJORS.start(),
                SUPPORTED_MAJORS.end()
            ),
            "run the repository on PostgreSQL 12–16; Qlik bundles 14.17",
        )]
    }
}

fn role(ctx: &Context<'_>) -> Vec<Finding> {
    let role = &ctx.spec.role;
    let Some(info) = &ctx.inventory.role else {
        return vec![Finding::fail("role.exists", format!("role {role:?} does not exist"), provision_hint(ctx))];
    };
    let mut out = vec![Finding::ok("role.exists", format!("role {role:?} exists"))];

    let diffs = info.attrs.differences(&RoleAttrs::EXPECTED);
    let id = "role.attributes";
    if diffs.is_empty() {
        out.push(Finding::ok(id, "LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION, never expires"));
    } else {
        let list: Vec<String> = diffs.iter().map(|(found, wanted)| format!("{found} (guide: {wanted})")).collect();
        // Fatal: Qlik cannot log in, or the role holds powers far beyond what it needs. The rest work but
        // deviate from the guide.
        let fatal = !info.attrs.login || info.attrs.superuser;
        let expiry = info.valid_until.as_deref().filter(|_| !info.attrs.never_expires);
        let message = match expiry {
            Some(date) => format!("{}; password valid until {date}", list.join(", ")),
            None => list.join(", "),
        };
        let hint = format!("{} (it sets the guide's attributes)", provision_hint(ctx));
        out.push(if fatal { Finding::fail(id, message, hint) } else { Finding::warn(id, message, hint) });
    }

    let id = "role.password";
    match info.password.as_ref().map(|p| p.hash_type) {
        None => out.push(Finding::warn(
            id,
            "cannot see how the password is stored (pg_authid is readable by superusers only)",
            "run qrd check as a superuser",
        )),
        Some(HashType::ScramSha256) => out.push(Finding::ok(id, "password stored as SCRAM-SHA-256")),
        Some(HashType::Md5) => out.push(Finding::warn(
            id,
            "password stored as md5",
            "set password_encryption = 'scram-sha-256', then set the password again (the guide's \"Changing from \
             MD5 to SCRAM encryption\")",
        )),
        Some(HashType::None) => out.push(Finding::fail(
            id,
            "the role has no password: Qlik's services cannot log in with password authentication",
            format!("{} --repo-password-file FILE", provision_hint(ctx)),
        )),
        Some(HashType::Other) => out.push(Finding::fail(
            id,
            "the password is stored in an unrecognised (possibly plaintext) form",
            format!("set it again: {} --repo-password-file FILE", provision_hint(ctx)),
        )),
    }

    if ctx.inventory.is_superuser {
        let me = &ctx.inventory.current_user;
        let id = "role.granted";
        if info.granted_to_current_user {
            out.push(Finding::ok(id, format!("role {role:?} is granted to {me:?}")));
        } else {
            out.push(Finding::warn(
                id,
                format!("role {role:?} is not granted to {me:?} (the guide's `GRANT {role} TO postgres`)"),
                provision_hint(ctx),
            ));
        }
    }
    out
}

fn databases(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for name in &ctx.spec.databases {
        let prefix = format!("database.{name}");
        match ctx.inventory.database(name) {
            None => out.push(Finding::fail(
                format!("{prefix}.exists"),
                format!("database {name:?} does not exist"),
                provision_hint(ctx),
            )),
            Some(db) => {
                out.push(Finding::ok(format!("{prefix}.exists"), format!("database {name:?} exists")));
                out.extend(database(ctx, &prefix, db));
            }
        }
    }
    out
}

fn database(ctx: &Context<'_>, prefix: &str, db: &DbInfo) -> Vec<Finding> {
    let role = ctx.spec.role.as_str();
    let name = &db.name;
    let mut out = Vec::new();

    let id = format!("{prefix}.encoding");
    if db.encoding.eq_ignore_ascii_case("UTF8") {
        out.push(Finding::ok(id, "encoding UTF8"));
    } else {
        out.push(Finding::fail(
            id,
            format!("encoding {}, Qlik needs UTF8", db.encoding),
            "recreate the database as UTF8 from template0 (dump it first if it holds data); qrd never drops it",
        ));
    }

    let id = format!("{prefix}.owner");
    if db.owner == role {
        out.push(Finding::ok(id, format!("owned by {role:?}")));
    } else {
        out.push(Finding::fail(
            id,
            format!("owned by {:?}, not {role:?}", db.owner),
            format!("{} --fix-owner", provision_hint(ctx)),
        ));
    }

    // The role is NOINHERIT, so only its own entries (ownership included) and PUBLIC's count.
    let id = format!("{prefix}.privileges");
    let role_has = |p: &str| db.grants(Some(role), p) || db.grants(None, p);
    let missing: Vec<&str> = ["CONNECT", "CREATE", "TEMPORARY"].into_iter().filter(|p| !role_has(p)).collect();
    let public_missing: Vec<&str> = ["CONNECT", "TEMPORARY"].into_iter().filter(|p| !db.grants(None, p)).collect();
    if !missing.is_empty() {
        out.push(Finding::fail(
            id,
            format!("{role:?} lacks {} on the database", missing.join(", ")),
            provision_hint(ctx),
        ));
    } else if !public_missing.is_empty() {
        out.push(Finding::warn(
            id,
            format!("PUBLIC lacks {} (the guide grants TEMPORARY, CONNECT to PUBLIC)", public_missing.join(", ")),
            provision_hint(ctx),
        ));
    } else {
        out.push(Finding::ok(id, format!("{role:?} can connect, create and use temporary tables")));
    }

    let id = format!("{prefix}.schema_public");
    match &db.public_schema {
        None if !db.allow_conn => out.push(Finding::fail(
            id,
            format!("database {name:?} does not accept connections (datallowconn is false)"),
            "ALTER DATABASE … WITH ALLOW_CONNECTIONS true",
        )),
        None => out.push(Finding::fail(id, "schema public does not exist", "CREATE SCHEMA public in the database")),
        Some(s) => match (s.role_usage, s.role_create) {
            (Some(true), Some(true)) => {
                out.push(Finding::ok(id, format!("{role:?} has USAGE and CREATE on schema public")))
            }
            (None, _) | (_, None) => {} // the role does not exist: reported by role.exists
            _ => {
                let why = match ctx.inventory.version.major {
                    15 => {
                        " (on PostgreSQL 15 PUBLIC may not create in public and the NOINHERIT role does not get \
                           the rights of pg_database_owner)"
                    }
                    m if m > 15 => " (on PostgreSQL 15+ PUBLIC may not create in public)",
                    _ => "",
                };
                out.push(Finding::fail(
                    id,
                    format!("{role:?} cannot create objects in schema public{why}"),
                    format!("{} (the guide's GRANT ALL ON SCHEMA public)", provision_hint(ctx)),
                ));
            }
        },
    }
    out
}

fn password_encryption(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.password_encryption";
    let value = &ctx.inventory.password_encryption;
    if value == "scram-sha-256" {
        vec![Finding::ok(id, "password_encryption = scram-sha-256")]
    } else {
        vec![Finding::warn(
            id,
            format!("password_encryption = {value}: new passwords are stored as md5"),
            "ALTER SYSTEM SET password_encryption = 'scram-sha-256' and reload (the guide's MD5 to SCRAM procedure)",
        )]
    }
}

fn ssl(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "server.ssl";
    if ctx.inventory.ssl {
        vec![Finding::ok(id, "ssl = on")]
    } else {
        vec![Finding::warn(
            id,
            "ssl = off: traffic between the Qlik nodes and the repository is not encrypted",
            "enable TLS (the guide's \"Database traffic encryption\")",
        )]
    }
}

fn client_tools(ctx: &Context<'_>) -> Vec<Finding> {
    let id = "client-tools";
    let found: Vec<String> =
        ctx.tools.results.iter().filter_map(|r| r.as_ref().ok()).map(|t| format!("{} {}", t.tool, t.version)).collect();
    let missing: Vec<_> = ctx.tools.results.iter().filter_map(|r| r.as_ref().err()).collect();
    if ctx.tools.results.is_empty() {
        return Vec::new();
    }
    match missing.first() {
        None => vec![Finding::ok(id, format!("{} fit PostgreSQL {}", found.join(", "), ctx.inventory.version))],
        Some(first) => {
            let names: Vec<String> = missing.iter().map(|e| e.tool.to_string()).collect();
            vec![Finding::warn(
                id,
                format!(
                    "no {} fitting PostgreSQL {} here: backups from this machine cannot run (candidates: {})",
                    names.join(", "),
                    ctx.inventory.version,
                    first.rejected_summary()
                ),
                first.hint(),
            )]
        }
    }
}
