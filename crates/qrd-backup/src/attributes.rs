//! What a database's pg_dump archive leaves out without `--create`: the database's privileges (its ACL),
//! its `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` values, and its connection limit.
//! `qrd backup` records them in the manifest ([`read`], in each dump's snapshot); a restore gives them to
//! every database it fills ([`apply`]): the bundle's for a database it creates or fills, and with `--clean`
//! those of the database it replaces, read the same way. Without this a restored site lacks the guide's
//! database grants until `qrd provision` runs, and a site's own hardening (CONNECT revoked from PUBLIC, a
//! reader role, a per-database `search_path`) is silently lost.
//!
//! The ACL is kept as PostgreSQL prints it (`name=privileges/grantor`, the name double-quoted when it
//! needs it, an empty name for PUBLIC, `*` after a privilege granted with grant option) and parsed item by
//! item ([`AclItem::parse`]): the target ends with exactly those items — every old grant revoked, each
//! item granted again with every role name through [`qrd_pg::quote`], by its grantor where that is not
//! the owner (the grantor is part of the item). The statements run in one transaction.

use qrd_exit::{ExitStatus, UserError};
use std::collections::{BTreeMap, BTreeSet};

use qrd_pg::Session;
use qrd_pg::inventory::QueryError;
use qrd_pg::quote::{self, QuoteError};
use qrd_pg::sql_template;
use qrd_pg::template::Template;
use serde::{Deserialize, Serialize};

const DATABASE_ATTRIBUTES: Template = sql_template!("backup/database_attributes.sql");

/// A database's privileges, settings and connection limit (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DatabaseAttributes {
    /// `pg_database.datacl` as PostgreSQL prints each item (`qliksenserepository=CTc/qliksenserepository`,
    /// `=Tc/qliksenserepository` for PUBLIC); `None`: NULL, the built-in default (the owner may do
    /// everything, PUBLIC may connect and make temporary tables).
    pub acl: Option<Vec<String>>,
    /// `datconnlimit`; -1 for none.
    pub connection_limit: i32,
    /// `pg_db_role_setting` of the database: per role (`None`: `ALTER DATABASE … SET`), its `name=value`
    /// entries as the server keeps them.
    pub settings: Vec<RoleSettings>,
}

/// The settings of one role in the database (`role` `None`: of the database itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSettings {
    pub role: Option<String>,
    pub values: Vec<String>,
}

/// A database's attributes as a server holds them, with the owner whose default a NULL ACL stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnServer {
    pub owner: String,
    pub attributes: DatabaseAttributes,
}

#[derive(Debug, thiserror::Error)]
pub enum AttributeError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("database {database:?} does not exist")]
    NoDatabase { database: String },
    #[error("failed to read the privilege item {item:?} of database {database:?}: {reason}")]
    Acl { database: String, item: String, reason: String },
    #[error("failed to read the setting {setting:?} of database {database:?}: {reason}")]
    Setting { database: String, setting: String, reason: String },
    #[error("failed to quote a name or value for database {database:?}: {source}")]
    Quote {
        database: String,
        #[source]
        source: QuoteError,
    },
    #[error("failed to give database {database:?} its privileges and settings at `{statement}`: {message}")]
    Statement { database: String, statement: String, message: String },
}

impl UserError for AttributeError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            AttributeError::Query(e) => e.exit_status(),
            _ => ExitStatus::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.hint_text())
    }
}

impl AttributeError {
    fn hint_text(&self) -> String {
        match self {
            AttributeError::Query(_) | AttributeError::NoDatabase { .. } => {
                "run again with -v for the statements qrd runs; restore as a superuser".into()
            }
            AttributeError::Acl { .. } | AttributeError::Setting { .. } | AttributeError::Quote { .. } => {
                "the manifest's `attributes` of that database are not what PostgreSQL writes: verify the bundle".into()
            }
            AttributeError::Statement { .. } => {
                "the data is restored; give the database those privileges and settings by hand (or run `qrd \
                 provision` for the guide's grants), and check that every role named exists"
                    .into()
            }
        }
    }
}

/// The attributes of `database` on the server `client` reaches (connected to any database: the catalogs
/// read are shared); `None` when there is no such database. `on` names the connection's database in errors.
pub async fn read(client: &tokio_postgres::Client, database: &str, on: &str) -> Result<Option<OnServer>, QueryError> {
    let rows = client
        .query(DATABASE_ATTRIBUTES.text, &[&database])
        .await
        .map_err(|e| QueryError::query(DATABASE_ATTRIBUTES.name, on, &e))?;
    let Some(first) = rows.first() else { return Ok(None) };
    let mut attributes = DatabaseAttributes {
        acl: first.get("acl"),
        connection_limit: first.get("connection_limit"),
        settings: Vec::new(),
    };
    for r in &rows {
        if let Some(values) = r.get::<_, Option<Vec<String>>>("setconfig") {
            attributes.settings.push(RoleSettings { role: r.get("role"), values });
        }
    }
    Ok(Some(OnServer { owner: first.get("owner"), attributes }))
}

/// Gives database `into` exactly the attributes `want` (of a database owned by `want_owner`), in one
/// transaction; returns how many statements that took (none when it has them already).
pub async fn apply(
    session: &Session,
    into: &str,
    want: &DatabaseAttributes,
    want_owner: &str,
) -> Result<usize, AttributeError> {
    let main_db = session.target().dbname.clone();
    let client = session.client();
    let have =
        read(client, into, &main_db).await?.ok_or_else(|| AttributeError::NoDatabase { database: into.to_owned() })?;
    let statements = statements(into, &have, want, want_owner)?;
    if statements.is_empty() {
        return Ok(0);
    }
    let failed = |statement: &str, e: tokio_postgres::Error| AttributeError::Statement {
        database: into.to_owned(),
        statement: statement.to_owned(),
        message: qrd_pg::connect::server_message(&e),
    };
    client.batch_execute("BEGIN").await.map_err(|e| failed("BEGIN", e))?;
    for s in &statements {
        tracing::debug!(sql = %s, "running");
        if let Err(e) = client.batch_execute(s).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(failed(s, e));
        }
    }
    client.batch_execute("COMMIT").await.map_err(|e| failed("COMMIT", e))?;
    tracing::info!("{into:?} has its privileges, settings and connection limit ({} statements)", statements.len());
    Ok(statements.len())
}

/// One item of an ACL: `grantee=privileges/grantor`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclItem {
    /// `None`: PUBLIC.
    pub grantee: Option<String>,
    /// The database privileges (`CONNECT`, `CREATE`, `TEMPORARY`), each with whether it carries the grant
    /// option, sorted.
    pub privileges: Vec<(&'static str, bool)>,
    pub grantor: String,
}

impl AclItem {
    /// Parses one item of a database's ACL as PostgreSQL prints it: a name is double-quoted when it holds
    /// anything but letters, digits and `_` (a `"` in it doubled), PUBLIC's name is empty, and a `*`
    /// follows each privilege held with grant option.
    pub fn parse(text: &str) -> Result<AclItem, String> {
        let (grantee, rest) = name(text, '=')?;
        let rest = rest.strip_prefix('=').ok_or("no `=` after the grantee")?;
        let (letters, grantor) = rest.split_once('/').ok_or("no `/` before the grantor")?;
        let (grantor, after) = name(grantor, '\0')?;
        if !after.is_empty() {
            return Err(format!("{after:?} after the grantor"));
        }
        if grantor.is_empty() {
            return Err("no grantor".into());
        }
        let mut privileges = Vec::new();
        let mut chars = letters.chars().peekable();
        while let Some(c) = chars.next() {
            let word = match c {
                'C' => "CREATE",
                'T' => "TEMPORARY",
                'c' => "CONNECT",
                other => return Err(format!("{other:?} is not a database privilege")),
            };
            let grant_option = chars.next_if_eq(&'*').is_some();
            privileges.push((word, grant_option));
        }
        privileges.sort();
        privileges.dedup();
        Ok(AclItem { grantee: (!grantee.is_empty()).then_some(grantee), privileges, grantor })
    }

    /// The built-in default that a NULL ACL stands for: the owner may do everything, PUBLIC may connect
    /// and make temporary tables.
    fn defaults(owner: &str) -> Vec<AclItem> {
        let item = |grantee: Option<&str>, privileges: Vec<&'static str>| AclItem {
            grantee: grantee.map(str::to_owned),
            privileges: privileges.into_iter().map(|p| (p, false)).collect(),
            grantor: owner.to_owned(),
        };
        vec![item(None, vec!["CONNECT", "TEMPORARY"]), item(Some(owner), vec!["CONNECT", "CREATE", "TEMPORARY"])]
    }
}

/// A name of an ACL item and what follows it: double-quoted (`""` for a `"`), or everything up to `stop`.
fn name(text: &str, stop: char) -> Result<(String, &str), String> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(stop).unwrap_or(text.len());
        return Ok((text[..end].to_owned(), &text[end..]));
    };
    let mut out = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            out.push(c);
        } else if quoted[i + 1..].starts_with('"') {
            out.push('"');
            chars.next();
        } else {
            return Ok((out, &quoted[i + 1..]));
        }
    }
    Err("a quoted name without its closing `\"`".into())
}

/// The statements that give database `into` (as `have` says it is now) the attributes `want` of a
/// database owned by `want_owner`: nothing when it has them.
pub fn statements(
    into: &str,
    have: &OnServer,
    want: &DatabaseAttributes,
    want_owner: &str,
) -> Result<Vec<String>, AttributeError> {
    let q = |source| AttributeError::Quote { database: into.to_owned(), source };
    let target = quote::ident(into).map_err(q)?;
    let mut out = Vec::new();

    // The privileges: the exact list of items, when it differs.
    let items = |acl: &Option<Vec<String>>, database: &str| -> Result<Vec<AclItem>, AttributeError> {
        match acl {
            None => Ok(AclItem::defaults(&have.owner)),
            Some(list) => list
                .iter()
                .map(|item| {
                    AclItem::parse(item).map_err(|reason| AttributeError::Acl {
                        database: database.to_owned(),
                        item: item.clone(),
                        reason,
                    })
                })
                .collect(),
        }
    };
    let now = items(&have.attributes.acl, into)?;
    let wanted = items(&want.acl, into)?;
    let set = |v: &[AclItem]| v.iter().cloned().collect::<BTreeSet<_>>();
    if set(&now) != set(&wanted) {
        // Everything granted so far goes (CASCADE: grants made through a grant option too), then each item
        // is granted again: by the owner (as which a superuser grants), or as its grantor.
        let mut from: Vec<String> = vec!["PUBLIC".into()];
        for grantee in now.iter().filter_map(|i| i.grantee.as_deref()).collect::<BTreeSet<_>>() {
            from.push(quote::ident(grantee).map_err(q)?);
        }
        out.push(format!("REVOKE ALL ON DATABASE {target} FROM {} CASCADE", from.join(", ")));
        let owners = [have.owner.as_str(), want_owner];
        let (by_owner, by_others): (Vec<&AclItem>, Vec<&AclItem>) =
            wanted.iter().partition(|i| owners.contains(&i.grantor.as_str()));
        for item in by_owner.into_iter().chain(by_others) {
            let to = match &item.grantee {
                Some(role) => quote::ident(role).map_err(q)?,
                None => "PUBLIC".to_owned(),
            };
            let as_grantor = !owners.contains(&item.grantor.as_str());
            if as_grantor {
                out.push(format!("SET LOCAL ROLE {}", quote::ident(&item.grantor).map_err(q)?));
            }
            for grant_option in [false, true] {
                let words: Vec<&str> =
                    item.privileges.iter().filter(|(_, g)| *g == grant_option).map(|(w, _)| *w).collect();
                if !words.is_empty() {
                    let option = if grant_option { " WITH GRANT OPTION" } else { "" };
                    out.push(format!("GRANT {} ON DATABASE {target} TO {to}{option}", words.join(", ")));
                }
            }
            if as_grantor {
                out.push("RESET ROLE".to_owned());
            }
        }
    }

    // The settings: each wanted value set where it differs, each other one reset.
    let by_key = |a: &DatabaseAttributes| -> Result<SettingsByKey, AttributeError> {
        let mut m = BTreeMap::new();
        for rs in &a.settings {
            for entry in &rs.values {
                let (name, value) = entry.split_once('=').ok_or_else(|| AttributeError::Setting {
                    database: into.to_owned(),
                    setting: entry.clone(),
                    reason: "no `=`".into(),
                })?;
                m.insert((rs.role.clone(), name.to_lowercase()), (name.to_owned(), value.to_owned()));
            }
        }
        Ok(m)
    };
    let (now, wanted) = (by_key(&have.attributes)?, by_key(want)?);
    let alter = |role: &Option<String>| -> Result<String, AttributeError> {
        Ok(match role {
            Some(r) => format!("ALTER ROLE {} IN DATABASE {target}", quote::ident(r).map_err(q)?),
            None => format!("ALTER DATABASE {target}"),
        })
    };
    let setting_name = |name: &str| -> Result<String, AttributeError> {
        Ok(name.split('.').map(quote::ident).collect::<Result<Vec<_>, _>>().map_err(q)?.join("."))
    };
    for (key, (name, value)) in &wanted {
        if now.get(key).is_some_and(|(_, v)| v == value) {
            continue;
        }
        let value = setting_value(name, value).map_err(|reason| AttributeError::Setting {
            database: into.to_owned(),
            setting: format!("{name}={value}"),
            reason,
        })?;
        out.push(format!("{} SET {} TO {value}", alter(&key.0)?, setting_name(name)?));
    }
    for (key, (name, _)) in &now {
        if !wanted.contains_key(key) {
            out.push(format!("{} RESET {}", alter(&key.0)?, setting_name(name)?));
        }
    }

    if have.attributes.connection_limit != want.connection_limit {
        out.push(format!("ALTER DATABASE {target} CONNECTION LIMIT {}", want.connection_limit));
    }
    Ok(out)
}

/// Settings by (role, lower-case name): the name as written and the value.
type SettingsByKey = BTreeMap<(Option<String>, String), (String, String)>;

/// The settings whose value is a list the server keeps with its elements double-quoted as needed
/// (PostgreSQL's GUC_LIST_QUOTE: of those, the ones a database or role may set).
const LIST_SETTINGS: [&str; 4] =
    ["search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries"];

/// A setting's stored value as SQL: one string literal, or for a list setting one literal per element (as
/// pg_dump writes them: `"$user", public` is kept quoted, and one literal `'"$user", public'` would be a
/// single schema of that name).
fn setting_value(name: &str, value: &str) -> Result<String, String> {
    let literal = |v: &str| quote::literal(v).map_err(|e| e.to_string());
    if !LIST_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return literal(value);
    }
    let elements = split_list(value).ok_or_else(|| format!("{value:?} is not a list of names"))?;
    if elements.is_empty() {
        return literal("");
    }
    Ok(elements.iter().map(|e| literal(e)).collect::<Result<Vec<_>, _>>()?.join(", "))
}

/// The elements of a stored list value: separated by commas, each bare or double-quoted (`""` for `"`),
/// whitespace around them ignored; `None` when it is not such a list.
fn split_list(value: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = value.trim_start();
    if rest.is_empty() {
        return Some(out);
    }
    loop {
        if rest.starts_with('"') {
            let (element, after) = name(rest, '\0').ok()?;
            out.push(element);
            rest = after;
        } else {
            let end = rest.find(|c: char| c == ',' || c.is_whitespace()).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(out);
        }
        rest = rest.strip_prefix(',')?.trim_start();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_items_as_postgresql_prints_them() {
        let ok = |text: &str, grantee: Option<&str>, privileges: &[(&str, bool)], grantor: &str| {
            let item = AclItem::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(item.grantee.as_deref(), grantee, "{text}");
            assert_eq!(item.privileges, privileges, "{text}");
            assert_eq!(item.grantor, grantor, "{text}");
        };
        ok("=Tc/qliksenserepository", None, &[("CONNECT", false), ("TEMPORARY", false)], "qliksenserepository");
        ok(
            "qliksenserepository=CTc/qliksenserepository",
            Some("qliksenserepository"),
            &[("CONNECT", false), ("CREATE", false), ("TEMPORARY", false)],
            "qliksenserepository",
        );
        // Case is kept: an unquoted name is exactly that name.
        ok("QlikAdmin=C*c/postgres", Some("QlikAdmin"), &[("CONNECT", false), ("CREATE", true)], "postgres");
        ok(r#""Qlik ""Reader"", ro"=c*/"a=b/c""#, Some(r#"Qlik "Reader", ro"#), &[("CONNECT", true)], "a=b/c");
        ok(r#""Ünïcødé Ρόλος"=c/postgres"#, Some("Ünïcødé Ρόλος"), &[("CONNECT", false)], "postgres");
        ok("nobody=/postgres", Some("nobody"), &[], "postgres");
        for (bad, why) in [
            ("qsr=r/postgres", "'r' is not a database privilege"),
            ("qsr=c", "no `/` before the grantor"),
            ("qsr", "no `=` after the grantee"),
            (r#""open=c/postgres"#, "a quoted name without its closing `\"`"),
            ("qsr=c/", "no grantor"),
            (r#"qsr=c/"x"y"#, "\"y\" after the grantor"),
        ] {
            assert_eq!(AclItem::parse(bad), Err(why.to_owned()), "{bad}");
        }
    }

    fn on(owner: &str, acl: Option<&[&str]>, settings: &[(Option<&str>, &[&str])], limit: i32) -> OnServer {
        OnServer {
            owner: owner.into(),
            attributes: DatabaseAttributes {
                acl: acl.map(|a| a.iter().map(|s| s.to_string()).collect()),
                connection_limit: limit,
                settings: settings
                    .iter()
                    .map(|(role, values)| RoleSettings {
                        role: role.map(str::to_owned),
                        values: values.iter().map(|v| v.to_string()).collect(),
                    })
                    .collect(),
            },
        }
    }

    const REPO: &str = "qliksenserepository";

    #[test]
    fn a_fresh_database_gets_the_exact_items_settings_and_limit_every_name_quoted() {
        let fresh = on(REPO, None, &[], -1);
        let want = on(
            REPO,
            Some(&[
                "qliksenserepository=CTc/qliksenserepository",
                "postgres=CTc/qliksenserepository",
                r#""Qlik ""Reader"", ro"=c*/qliksenserepository"#,
                r#"qlik_audit=c/"Qlik ""Reader"", ro""#,
            ]),
            &[
                (None, &["work_mem=8MB", r#"search_path="$user", public, "Odd, Schema""#]),
                (Some("Qlik \"Reader\", ro"), &["statement_timeout=5min"]),
            ],
            50,
        );
        let sql = statements("QSR", &fresh, &want.attributes, REPO).unwrap();
        assert_eq!(
            sql,
            [
                "REVOKE ALL ON DATABASE \"QSR\" FROM PUBLIC, \"qliksenserepository\" CASCADE",
                "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE \"QSR\" TO \"qliksenserepository\"",
                "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE \"QSR\" TO \"postgres\"",
                "GRANT CONNECT ON DATABASE \"QSR\" TO \"Qlik \"\"Reader\"\", ro\" WITH GRANT OPTION",
                "SET LOCAL ROLE \"Qlik \"\"Reader\"\", ro\"",
                "GRANT CONNECT ON DATABASE \"QSR\" TO \"qlik_audit\"",
                "RESET ROLE",
                "ALTER DATABASE \"QSR\" SET \"search_path\" TO '$user', 'public', 'Odd, Schema'",
                "ALTER DATABASE \"QSR\" SET \"work_mem\" TO '8MB'",
                "ALTER ROLE \"Qlik \"\"Reader\"\", ro\" IN DATABASE \"QSR\" SET \"statement_timeout\" TO '5min'",
                "ALTER DATABASE \"QSR\" CONNECTION LIMIT 50",
            ]
        );
        // Once it has them, nothing more.
        assert_eq!(statements("QSR", &want, &want.attributes, REPO).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn what_the_target_has_beyond_the_wanted_goes() {
        // A database someone created with its own grants and settings, filled with a bundle of the default.
        let have = on(
            "postgres",
            Some(&["postgres=CTc/postgres", "=c/postgres", "x=T/postgres"]),
            &[(None, &["work_mem=4MB"]), (Some("x"), &["work_mem=1MB"])],
            10,
        );
        let want = DatabaseAttributes { acl: None, connection_limit: -1, settings: Vec::new() };
        let sql = statements("Licenses", &have, &want, REPO).unwrap();
        assert_eq!(
            sql,
            [
                "REVOKE ALL ON DATABASE \"Licenses\" FROM PUBLIC, \"postgres\", \"x\" CASCADE",
                "GRANT CONNECT, TEMPORARY ON DATABASE \"Licenses\" TO PUBLIC",
                "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE \"Licenses\" TO \"postgres\"",
                "ALTER DATABASE \"Licenses\" RESET \"work_mem\"",
                "ALTER ROLE \"x\" IN DATABASE \"Licenses\" RESET \"work_mem\"",
                "ALTER DATABASE \"Licenses\" CONNECTION LIMIT -1",
            ]
        );
        // The default written out equals the default: nothing to do.
        let explicit =
            on(REPO, Some(&["=Tc/qliksenserepository", "qliksenserepository=CTc/qliksenserepository"]), &[], -1);
        let fresh = on(REPO, None, &[], -1);
        assert!(statements("QSR", &fresh, &explicit.attributes, REPO).unwrap().is_empty());
    }

    #[test]
    fn broken_items_and_values_are_errors_naming_them() {
        let fresh = on(REPO, None, &[], -1);
        let bad_acl = on(REPO, Some(&["x=z/y"]), &[], -1);
        match statements("QSR", &fresh, &bad_acl.attributes, REPO) {
            Err(AttributeError::Acl { database, item, reason }) => {
                assert_eq!((database.as_str(), item.as_str()), ("QSR", "x=z/y"));
                assert_eq!(reason, "'z' is not a database privilege");
            }
            other => panic!("{other:?}"),
        }
        let bad_list = on(REPO, None, &[(None, &[r#"search_path="open"#])], -1);
        match statements("QSR", &fresh, &bad_list.attributes, REPO) {
            Err(AttributeError::Setting { setting, .. }) => assert_eq!(setting, r#"search_path="open"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_values_split_like_the_server_writes_them() {
        assert_eq!(split_list(r#""$user", public"#).unwrap(), ["$user", "public"]);
        assert_eq!(split_list(r#"a,"b ""c""",  d "#).unwrap(), ["a", "b \"c\"", "d"]);
        assert_eq!(split_list(r#""""#).unwrap(), [""]);
        assert_eq!(split_list("").unwrap(), Vec::<String>::new());
        assert_eq!(split_list("a b"), None);
        assert_eq!(split_list("a,,b"), None);
        assert_eq!(setting_value("search_path", r#""$user", public"#).unwrap(), "'$user', 'public'");
        assert_eq!(setting_value("work_mem", "8MB").unwrap(), "'8MB'");
        assert_eq!(setting_value("application_name", "it's").unwrap(), "'it''s'");
    }
}
