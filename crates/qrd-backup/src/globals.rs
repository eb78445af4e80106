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

    #[test]
    fn broken_text_is_an_error_not_a_guess() {
        assert!(matches!(Globals::parse("CREATE ROLE \"open;"), Err(GlobalsError::Unterminated { .. })));
        assert!(matches!(Globals::parse("COMMENT ON ROLE x IS 'open;"), Err(GlobalsError::Unterminated { .. })));
        assert!(matches!(Globals::parse("GRANT a;"), Err(GlobalsError::BadName { .. })));
        let g = Globals::parse("CREATE TABLESPACE t OWNER postgres LOCATION '/x';").unwrap();
        assert_eq!(g.plan(&BTreeSet::new()).skipped.len(), 1);
    }
}
