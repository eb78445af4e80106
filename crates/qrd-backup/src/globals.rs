//! `globals.sql`: the roles of the source server as `pg_dumpall --globals-only` prints them (attributes,
//! password verifiers, settings, comments, memberships), and what a restore takes from it. The guide's
//! restore forgets the roles; a restore onto a clean server then fails on every `OWNER TO`.
//!
//! A restore must leave the target's existing roles as they are (their passwords are the target site's),
//! so the file is read statement by statement: a role that is missing is created with everything the
//! source said about it, a role that exists is skipped whole, and a membership is granted when one of its
//! two roles was created here. Statements are split the way the server reads them (quotes, quoted
//! identifiers and comments respected), never by pasting text together.

use std::collections::BTreeSet;

/// One statement of `globals.sql` and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement as written, with its terminating `;`.
    pub sql: String,
    pub subject: Subject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `CREATE ROLE r`.
    CreateRole(String),
    /// `ALTER ROLE r WITH …`, `ALTER ROLE r SET …`, `COMMENT ON ROLE r …`, `SECURITY LABEL … ON ROLE r`.
    Role(String),
    /// `ALTER ROLE r IN DATABASE d SET …`: needs the database, so it runs after the databases are restored.
    RoleInDatabase { role: String, database: String },
    /// `GRANT role TO member …`.
    Grant { role: String, member: String },
    /// Session settings of the script (`SET client_encoding …`), run before the rest.
    Session,
    /// Anything else (tablespaces): reported, not run.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobalsError {
    #[error("globals.sql: unterminated {what} starting at byte {offset}")]
    Unterminated { what: &'static str, offset: usize },
    #[error("globals.sql: cannot read the role name in: {statement}")]
    BadName { statement: String },
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Globals {
    pub statements: Vec<Statement>,
}

/// What a restore runs of `globals.sql` on a target whose roles are known.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RolesPlan {
    /// Roles created here, in the file's order.
    pub create: Vec<String>,
    /// Roles that exist on the target and are left as they are.
    pub existing: Vec<String>,
    /// The statements to run now, in order.
    pub statements: Vec<String>,
    /// Statements that need the databases (`ALTER ROLE … IN DATABASE`): run after the restore.
    pub after_databases: Vec<String>,
    /// Statements not run (tablespaces and the like), for the report.
    pub skipped: Vec<String>,
}

impl Globals {
    pub fn parse(text: &str) -> Result<Globals, GlobalsError> {
        let mut statements = Vec::new();
        for sql in split_statements(text)? {
            let subject = classify(&sql)?;
            statements.push(Statement { sql, subject });
        }
        Ok(Globals { statements })
    }

    /// Every role the file creates, in order.
    pub fn roles(&self) -> Vec<&str> {
        self.statements
            .iter()
            .filter_map(|s| match &s.subject {
                Subject::CreateRole(r) => Some(r.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The statements for a target that already has `existing` roles (see the module documentation).
    pub fn plan(&self, existing: &BTreeSet<String>) -> RolesPlan {
        let mut plan = RolesPlan::default();
        let created: BTreeSet<&str> = self.roles().into_iter().filter(|r| !existing.contains(*r)).collect();
        for r in self.roles() {
            if created.contains(r) {
                plan.create.push(r.to_owned());
            } else {
                plan.existing.push(r.to_owned());
            }
        }
        for s in &self.statements {
            match &s.subject {
                Subject::Session => plan.statements.push(s.sql.clone()),
                Subject::CreateRole(r) | Subject::Role(r) if created.contains(r.as_str()) => {
                    plan.statements.push(s.sql.clone())
                }
                Subject::CreateRole(_) | Subject::Role(_) => {}
                Subject::RoleInDatabase { role, .. } if created.contains(role.as_str()) => {
                    plan.after_databases.push(s.sql.clone())
                }
                Subject::RoleInDatabase { .. } => {}
                Subject::Grant { role, member }
                    if created.contains(role.as_str()) || created.contains(member.as_str()) =>
                {
                    plan.statements.push(s.sql.clone())
                }
                Subject::Grant { .. } => {}
                Subject::Other => plan.skipped.push(s.sql.clone()),
            }
        }
        plan
    }
}

/// The role attributes only a superuser may name at all, even to switch them off (`NOSUPERUSER` too).
const SUPERUSER_ONLY: [&str; 6] =
    ["SUPERUSER", "NOSUPERUSER", "REPLICATION", "NOREPLICATION", "BYPASSRLS", "NOBYPASSRLS"];

impl Globals {
    /// The file as an admin that is no superuser may run it (a managed server's: CREATEROLE CREATEDB):
    /// `ALTER ROLE … WITH` without the attributes only a superuser may name (a role that had SUPERUSER,
    /// REPLICATION or BYPASSRLS is created without it, and the returned notes say so); `GRANT … GRANTED BY`
    /// without the grantor, which only a superuser may name (the admin becomes the grantor); and no grant
    /// whose member is `me` (the restore grants the admin what it needs itself). Tablespaces stay
    /// [`Subject::Other`], reported and not run, as for anyone. Returns the roles and the attributes left
    /// out with the statements.
    pub fn for_admin(&self, me: &str) -> (Globals, Vec<(String, &'static str)>) {
        let mut notes = Vec::new();
        let mut statements = Vec::new();
        for st in &self.statements {
            let sql = match &st.subject {
                Subject::Role(role) if role_attributes(&st.sql).is_some() => {
                    let (head, attrs) = role_attributes(&st.sql).expect("checked");
                    let kept: Vec<&str> = attrs
                        .iter()
                        .copied()
                        .filter(|a| !SUPERUSER_ONLY.iter().any(|w| a.eq_ignore_ascii_case(w)))
                        .collect();
                    for attr in ["SUPERUSER", "REPLICATION", "BYPASSRLS"] {
                        if attrs.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
                            notes.push((role.clone(), attr));
                        }
                    }
                    format!("{head} {};", kept.join(" "))
                }
                Subject::Grant { member, .. } if member == me => continue,
                Subject::Grant { .. } => without_grantor(&st.sql),
                _ => st.sql.clone(),
            };
            statements.push(Statement { sql, subject: st.subject.clone() });
        }
        (Globals { statements }, notes)
    }
}

/// Whether `sql` is one a restore cannot do without: creating a role or setting its attributes (without
/// them a login role would be created NOLOGIN). The rest of the file (memberships, settings, comments) an
/// admin that is no superuser may be refused, and skips with a note.
pub fn defines_role(sql: &str) -> bool {
    keywords(sql, &["CREATE", "ROLE"]).is_some() || role_attributes(sql).is_some()
}

/// `ALTER ROLE r WITH a b …;` as its head (`ALTER ROLE r WITH`, as written) and the attribute words, a
/// quoted literal (a password verifier, a date) kept with the word before it.
fn role_attributes(sql: &str) -> Option<(&str, Vec<&str>)> {
    let rest = keywords(sql, &["ALTER", "ROLE"])?;
    let (_, rest) = ident(rest)?;
    let attrs = keywords(rest, &["WITH"])?;
    let head = sql[..sql.len() - attrs.len()].trim_end();
    let body = attrs.trim_end().strip_suffix(';').unwrap_or(attrs).trim_end();
    Some((head, words(body)))
}

/// The words of `s` split at whitespace outside single and double quotes.
fn words(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(b) = start.take() {
                    out.push(&s[b..i]);
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(b) = start {
        out.push(&s[b..]);
    }
    out
}

/// A `GRANT … GRANTED BY r;` without its `GRANTED BY r` (a doubled quote inside a quoted name is two
/// quotes in a row, which the word split keeps together).
fn without_grantor(sql: &str) -> String {
    let body = sql.trim_end().strip_suffix(';').unwrap_or(sql);
    let w = words(body);
    match w.iter().position(|x| x.eq_ignore_ascii_case("GRANTED")) {
        Some(i) if w.get(i + 1).is_some_and(|b| b.eq_ignore_ascii_case("BY")) && w.len() == i + 3 => {
            format!("{};", w[..i].join(" "))
        }
        _ => sql.to_owned(),
    }
}

/// Splits SQL text into statements at each `;` outside string literals, quoted identifiers and comments;
/// comments and blank lines between statements are dropped.
fn split_statements(text: &str) -> Result<Vec<String>, GlobalsError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map(|n| i + n).unwrap_or(bytes.len());
                continue;
            }
            // A psql meta-command (pg_dumpall's `\restrict KEY` / `\unrestrict KEY` since the 2025 minor
            // releases) runs to the end of its line and is psql's business, not the server's.
            b'\\' if current.trim().is_empty() => {
                i = text[i..].find('\n').map(|n| i + n).unwrap_or(bytes.len());
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").ok_or(GlobalsError::Unterminated { what: "comment", offset: i })?;
                i += end + 4;
                continue;
            }
            b'\'' | b'"' => {
                let what = if c == b'\'' { "string" } else { "quoted identifier" };
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        None => return Err(GlobalsError::Unterminated { what, offset: i }),
                        Some(&q) if q == c && bytes.get(j + 1) == Some(&c) => j += 2,
                        Some(&q) if q == c => break,
                        Some(_) => j += 1,
                    }
                }
                current.push_str(&text[i..=j]);
                i = j + 1;
                continue;
            }
            b';' => {
                current.push(';');
                let stmt = current.trim().to_owned();
                if stmt != ";" {
                    out.push(stmt);
                }
                current.clear();
            }
            _ => {
                // Whole UTF-8 characters: a role name may hold any.
                let ch = text[i..].chars().next().expect("inside the text");
                current.push(ch);
                i += ch.len_utf8();
                continue;
            }
        }
        i += 1;
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    Ok(out)
}

/// Reads an identifier at the start of `s` (`"a""b"` or a bare word); returns it and the rest.
fn ident(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if let Some(rest) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if rest[i + 1..].starts_with('"') {
                    name.push('"');
                    chars.next();
                } else {
                    return Some((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = s.find(|c: char| c.is_whitespace() || c == ';' || c == ',').unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_owned(), &s[end..]))
    }
}

/// The statement's keywords, case-insensitively, at the start of `s`; returns the rest.
fn keywords<'a>(s: &'a str, words: &[&str]) -> Option<&'a str> {
    let mut rest = s.trim_start();
    for w in words {
        let head = rest.get(..w.len())?;
        if !head.eq_ignore_ascii_case(w) || rest[w.len()..].chars().next().is_some_and(|c| !c.is_whitespace()) {
            return None;
        }
        rest = rest[w.len()..].trim_start();
    }
    Some(rest)
}

fn classify(sql: &str) -> Result<Subject, GlobalsError> {
    let bad = || GlobalsError::BadName { statement: sql.to_owned() };
    if keywords(sql, &["SET"]).is_some() {
        return Ok(Subject::Session);
    }
    if let Some(rest) = keywords(sql, &["CREATE", "ROLE"]) {
        return Ok(Subject::CreateRole(ident(rest).ok_or_else(bad)?.0));
    }
    if let Some(rest) = keywords(sql, &["ALTER", "ROLE"]) {
        let (role, rest) = ident(rest).ok_or_else(bad)?;
        if let Some(rest) = keywords(rest, &["IN", "DATABASE"]) {
            let (database, _) = ident(rest).ok_or_else(bad)?;
            return Ok(Subject::RoleInDatabase { role, database });
        }
        return Ok(Subject::Role(role));
    }
    if let Some(rest) = keywords(sql, &["COMMENT", "ON", "ROLE"]) {
        return Ok(Subject::Role(ident(rest).ok_or_else(bad)?.0));
    }
    if keywords(sql, &["SECURITY", "LABEL"]).is_some() {
        // `SECURITY LABEL [FOR provider] ON ROLE r IS …`
        let at = sql.to_ascii_uppercase().find(" ON ROLE ").ok_or_else(bad)?;
        return Ok(Subject::Role(ident(&sql[at + " ON ROLE ".len()..]).ok_or_else(bad)?.0));
    }
    if let Some(rest) = keywords(sql, &["GRANT"]) {
        let (role, rest) = ident(rest).ok_or_else(bad)?;
        let rest = keywords(rest, &["TO"]).ok_or_else(bad)?;
        let (member, _) = ident(rest).ok_or_else(bad)?;
        return Ok(Subject::Grant { role, member });
    }
    Ok(Subject::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pg_dumpall 16.2 --globals-only of a server with a hostile role name, a comment holding `;` and a
    /// quote, a role setting and memberships (captured from a real server).
    const DUMP16: &str = r#"--
-- PostgreSQL database cluster dump
--

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE qliksenserepository;
ALTER ROLE qliksenserepository WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:4seuFfRq9cwVq6b/cbEqRw==$spxsDTRjFmRSYcaKvgsXr55rIB5uEy2MBabO905Gqug=:uXQYe8KKCZ6BxSa/Mjf+N0MWmGhNGYhgj+ew4I3g5yo=' VALID UNTIL 'infinity';
CREATE ROLE qlogs_reader;
ALTER ROLE qlogs_reader WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE qlogs_writer;
ALTER ROLE qlogs_writer WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
COMMENT ON ROLE qlogs_writer IS 'it''s; a comment';
CREATE ROLE "we""ird $$ role\ ü";
ALTER ROLE "we""ird $$ role\ ü" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:Ukf5fsfCQ7gqkhMfO9m7kA==$HHcUzUAas7lkQRIFJoefqVL4w4kRiAyQOOUHAU9/CPs=:1G8RWyn/APLh+lqh0uFlqpKJUxAijjYi1Ewf0AofAh8=';

--
-- User Configurations
--

--
-- User Config "qliksenserepository"
--

ALTER ROLE qliksenserepository SET search_path TO 'public';
ALTER ROLE qliksenserepository IN DATABASE "QSR" SET work_mem TO '8MB';


--
-- Role memberships
--

GRANT qliksenserepository TO postgres WITH INHERIT TRUE GRANTED BY postgres;
GRANT qlogs_reader TO "we""ird $$ role\ ü" WITH INHERIT TRUE GRANTED BY postgres;

--
-- PostgreSQL database cluster dump complete
--
"#;

    const WEIRD: &str = "we\"ird $$ role\\ ü";

    #[test]
    fn statements_and_subjects_of_a_real_dump() {
        let g = Globals::parse(DUMP16).unwrap();
        assert_eq!(g.roles(), ["postgres", "qliksenserepository", "qlogs_reader", "qlogs_writer", WEIRD]);
        let comment = g.statements.iter().find(|s| s.sql.starts_with("COMMENT")).unwrap();
        assert_eq!(comment.sql, "COMMENT ON ROLE qlogs_writer IS 'it''s; a comment';", "the ; inside quotes stays");
        assert_eq!(comment.subject, Subject::Role("qlogs_writer".into()));
        assert!(
            g.statements
                .iter()
                .any(|s| s.subject == Subject::Grant { role: "qlogs_reader".into(), member: WEIRD.into() })
        );
        assert!(g.statements.iter().any(
            |s| s.subject == Subject::RoleInDatabase { role: "qliksenserepository".into(), database: "QSR".into() }
        ));
        assert_eq!(g.statements.iter().filter(|s| s.subject == Subject::Session).count(), 3);
        assert!(g.statements.iter().all(|s| s.subject != Subject::Other), "{g:?}");
    }

    #[test]
    fn existing_roles_are_left_alone_and_missing_ones_created_whole() {
        let g = Globals::parse(DUMP16).unwrap();
        let existing: BTreeSet<String> = ["postgres".to_owned(), "qlogs_reader".to_owned()].into();
        let plan = g.plan(&existing);
        assert_eq!(plan.create, ["qliksenserepository", "qlogs_writer", WEIRD]);
        assert_eq!(plan.existing, ["postgres", "qlogs_reader"]);
        let run = plan.statements.join("\n");
        assert!(!run.contains("ALTER ROLE postgres"), "an existing role is not altered:\n{run}");
        assert!(run.contains("ALTER ROLE qliksenserepository WITH") && run.contains("PASSWORD 'SCRAM-SHA-256$"));
        assert!(run.contains("SET search_path TO 'public'"));
        // Both memberships involve a role created here.
        assert_eq!(plan.statements.iter().filter(|s| s.starts_with("GRANT")).count(), 2);
        assert_eq!(plan.after_databases, ["ALTER ROLE qliksenserepository IN DATABASE \"QSR\" SET work_mem TO '8MB';"]);

        // Everything exists: nothing but the session settings.
        let all: BTreeSet<String> = g.roles().into_iter().map(str::to_owned).collect();
        let plan = g.plan(&all);
        assert!(plan.create.is_empty());
        assert!(plan.statements.iter().all(|s| s.starts_with("SET ")), "{:?}", plan.statements);
    }

    /// pg_dumpall from the 2025 minor releases on wraps its output in psql's `\restrict KEY` and
    /// `\unrestrict KEY`: meta-commands, not SQL, and never glued to the statement that follows.
    #[test]
    fn psql_meta_commands_are_not_statements() {
        let text = "\\restrict fKl0rxeDXsh3CaFb7G\n\nSET default_transaction_read_only = off;\nCREATE ROLE a;\n\\unrestrict fKl0rxeDXsh3CaFb7G\n";
        let g = Globals::parse(text).unwrap();
        assert_eq!(g.statements.len(), 2, "{g:?}");
        assert_eq!(g.statements[0].sql, "SET default_transaction_read_only = off;");
        assert_eq!(g.statements[0].subject, Subject::Session);
        assert!(g.plan(&BTreeSet::new()).skipped.is_empty());
    }

    /// An admin that is no superuser restores the roles without the attributes only a superuser may name,
    /// memberships without their grantor, and none of its own (pg_dumpall 16 of a managed server, roles
    /// without passwords).
    #[test]
    fn what_an_admin_may_run() {
        let text = r#"SET client_encoding = 'UTF8';
CREATE ROLE dba;
ALTER ROLE dba WITH NOSUPERUSER INHERIT CREATEROLE CREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE qliksenserepository;
ALTER ROLE qliksenserepository WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS VALID UNTIL 'infinity';
CREATE ROLE "we""ird GRANTED BY x";
ALTER ROLE "we""ird GRANTED BY x" WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:a==$b=:c=' VALID UNTIL '2030-01-01 00:00:00+00';
GRANT qliksenserepository TO dba WITH ADMIN OPTION, INHERIT FALSE, SET FALSE GRANTED BY postgres;
GRANT qliksenserepository TO "we""ird GRANTED BY x" WITH INHERIT TRUE GRANTED BY "x y";
GRANT pg_monitor TO qliksenserepository;
CREATE TABLESPACE ts OWNER postgres LOCATION '/x';
"#;
        let (g, notes) = Globals::parse(text).unwrap().for_admin("dba");
        let sql: Vec<&str> = g.statements.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "SET client_encoding = 'UTF8';",
                "CREATE ROLE dba;",
                "ALTER ROLE dba WITH INHERIT CREATEROLE CREATEDB LOGIN;",
                "CREATE ROLE postgres;",
                "ALTER ROLE postgres WITH INHERIT CREATEROLE CREATEDB LOGIN;",
                "CREATE ROLE qliksenserepository;",
                "ALTER ROLE qliksenserepository WITH NOINHERIT NOCREATEROLE NOCREATEDB LOGIN VALID UNTIL 'infinity';",
                "CREATE ROLE \"we\"\"ird GRANTED BY x\";",
                "ALTER ROLE \"we\"\"ird GRANTED BY x\" WITH INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:a==$b=:c=' VALID UNTIL '2030-01-01 00:00:00+00';",
                "GRANT qliksenserepository TO \"we\"\"ird GRANTED BY x\" WITH INHERIT TRUE;",
                "GRANT pg_monitor TO qliksenserepository;",
                "CREATE TABLESPACE ts OWNER postgres LOCATION '/x';",
            ]
        );
        let postgres = |a| ("postgres".to_owned(), a);
        assert_eq!(notes, [postgres("SUPERUSER"), postgres("REPLICATION"), postgres("BYPASSRLS")]);
        assert!(defines_role(sql[2]) && defines_role(sql[1]) && !defines_role(sql[9]) && !defines_role(sql[0]));
        assert!(!defines_role("ALTER ROLE qliksenserepository SET search_path TO 'public';"));
        let plan = g.plan(&["dba".to_owned()].into());
        assert_eq!(plan.skipped, ["CREATE TABLESPACE ts OWNER postgres LOCATION '/x';"]);
    }

    #[test]
    fn broken_text_is_an_error_not_a_guess() {
        assert!(matches!(Globals::parse("CREATE ROLE \"open;"), Err(GlobalsError::Unterminated { .. })));
        assert!(matches!(Globals::parse("COMMENT ON ROLE x IS 'open;"), Err(GlobalsError::Unterminated { .. })));
        assert!(matches!(Globals::parse("GRANT a;"), Err(GlobalsError::BadName { .. })));
        let g = Globals::parse("CREATE TABLESPACE t OWNER postgres LOCATION '/x';").unwrap();
        assert_eq!(g.plan(&BTreeSet::new()).skipped.len(), 1);
    }
}
