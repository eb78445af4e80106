//! SQL templates from `sql/`, with psql-style variables: `:"name"` expands to a quoted identifier and
//! `:'name'` to a quoted literal, both through [`crate::quote`]. The files stay valid psql scripts
//! (`psql -v role=… -f file.sql` runs them), so a DBA can read and run exactly what qrd runs.
//!
//! Variables are not expanded inside string literals, quoted identifiers or `--` comments, and `::` casts
//! are left alone, as in psql.
//!
//! SQL shared by several templates lives in a file of its own, included with psql's `\ir FILE` (relative
//! to the including file): psql runs the files as they are, and qrd puts the included text in place of the
//! line, so what `--dry-run` prints is one self-contained script.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::quote::{self, QuoteError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("SQL template {template} uses variable {var:?}, which was not given")]
    Missing { template: &'static str, var: String },
    #[error("SQL template {template} has an unterminated variable reference at byte {offset}")]
    Unterminated { template: &'static str, offset: usize },
    #[error("SQL template {template}, variable {var:?}: {source}")]
    Quote { template: &'static str, var: String, source: QuoteError },
    #[error("SQL template {template} includes {path}, which is not one of qrd's shared SQL files")]
    Include { template: &'static str, path: String },
    #[error("psql variable {name}: {reason}")]
    Value { name: &'static str, reason: String },
}

/// The files templates may include (`\ir`), by their path under `sql/`.
const SHARED: &[(&str, &str)] = &[
    (
        "security/recorders_off.sql",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql/security/recorders_off.sql")),
    ),
    (
        "security/recorders_reset.sql",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql/security/recorders_reset.sql")),
    ),
];

/// A named SQL template (the name is the file under `sql/`, for error messages).
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub name: &'static str,
    pub text: &'static str,
}

/// Loads `sql/<path>` at compile time as a [`Template`].
#[macro_export]
macro_rules! sql_template {
    ($path:literal) => {
        $crate::template::Template {
            name: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sql/", $path)),
        }
    };
}

/// Values for a template's variables.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<&'static str, Value>);

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    /// Rendered as the psql variable reference itself (`:'name'`), for `--dry-run` scripts that must not
    /// contain a secret: psql refuses to run them until the variable is set.
    Unexpanded,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.0.insert(name, Value::Text(value.into()));
        self
    }

    pub fn unexpanded(mut self, name: &'static str) -> Self {
        self.0.insert(name, Value::Unexpanded);
        self
    }
}

impl Template {
    /// Renders the template. Comment lines are kept (they document the statement in `--dry-run` output).
    pub fn render(&self, vars: &Vars) -> Result<String, TemplateError> {
        Ok(self.expand(vars, true)?.0)
    }

    /// The statements without comments and blank lines, as sent to the server. Comments are dropped while
    /// scanning, so a value that contains a newline or `--` is never mistaken for one.
    pub fn render_statement(&self, vars: &Vars) -> Result<String, TemplateError> {
        Ok(self.expand(vars, false)?.0)
    }

    /// The statements one by one (split at each `;` outside quotes and comments), each to be sent in its own
    /// message as psql does with a script: a `SET` then takes effect before the next statement is logged.
    pub fn render_statements(&self, vars: &Vars) -> Result<Vec<String>, TemplateError> {
        let (text, ends) = self.expand(vars, false)?;
        let mut out = Vec::new();
        let mut start = 0;
        for end in ends.into_iter().chain([text.len()]) {
            let end = end.min(text.len());
            let statement = text[start.min(end)..end].trim();
            if !statement.is_empty() {
                out.push(statement.to_owned());
            }
            start = end;
        }
        Ok(out)
    }

    /// The text with every `\ir FILE` line replaced by that file's text.
    fn source(&self) -> Result<Cow<'static, str>, TemplateError> {
        if !self.text.lines().any(|l| l.starts_with("\\ir ")) {
            return Ok(Cow::Borrowed(self.text));
        }
        let dir = self.name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let mut out = String::with_capacity(self.text.len() * 2);
        for line in self.text.split_inclusive('\n') {
            let Some(rel) = line.strip_prefix("\\ir ") else {
                out.push_str(line);
                continue;
            };
            let rel = rel.trim();
            // `../x/y.sql` from `provision/`: the path under sql/.
            let path = match rel.strip_prefix("../") {
                Some(up) => up.to_owned(),
                None if dir.is_empty() => rel.to_owned(),
                None => format!("{dir}/{rel}"),
            };
            let text = SHARED
                .iter()
                .find(|(name, _)| *name == path)
                .map(|(_, text)| *text)
                .ok_or(TemplateError::Include { template: self.name, path })?;
            out.push_str(text);
        }
        Ok(Cow::Owned(out))
    }

    /// The expanded text and the offsets just after each top-level `;`.
    fn expand(&self, vars: &Vars, keep_comments: bool) -> Result<(String, Vec<usize>), TemplateError> {
        let mut ends = Vec::new();
        let source = self.source()?;
        let src: &str = &source;
        let bytes = src.as_bytes();
        let mut out = String::with_capacity(src.len() + 64);
        // Where the current source line starts in `out`, and whether it has anything but whitespace yet:
        // without comments, lines left empty are dropped.
        let mut line_start = 0;
        let mut content = false;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    let end = src[i..].find('\n').map(|n| i + n).unwrap_or(src.len());
                    if keep_comments {
                        out.push_str(&src[i..end]);
                        content = true;
                    }
                    i = end;
                }
                b'\n' => {
                    if keep_comments || content {
                        out.push('\n');
                    } else {
                        out.truncate(line_start);
                    }
                    line_start = out.len();
                    content = false;
                    i += 1;
                }
                b'\'' | b'"' => {
                    // Copy a quoted token verbatim; a doubled quote is an escaped quote inside it.
                    let mut j = i + 1;
                    while j < bytes.len() {
                        if bytes[j] == c {
                            if bytes.get(j + 1) == Some(&c) {
                                j += 2;
                                continue;
                            }
                            break;
                        }
                        j += 1;
                    }
                    let end = (j + 1).min(bytes.len());
                    out.push_str(&src[i..end]);
                    content = true;
                    i = end;
                }
                // A dollar-quoted string (`$$…$$`, `$tag$…$tag$`, a DO block's body): verbatim, its `;`
                // and `:'…'` belong to it. `$1` (a parameter) and a `$` inside a name are no quote.
                b'$' if dollar_tag(src, i).is_some() => {
                    let tag = dollar_tag(src, i).expect("checked");
                    let body = i + tag.len();
                    let len =
                        src[body..].find(tag).ok_or(TemplateError::Unterminated { template: self.name, offset: i })?;
                    let end = body + len + tag.len();
                    out.push_str(&src[i..end]);
                    content = true;
                    i = end;
                }
                b':' if bytes.get(i + 1) == Some(&b':') => {
                    out.push_str("::");
                    content = true;
                    i += 2;
                }
                b':' if matches!(bytes.get(i + 1), Some(b'\'') | Some(b'"')) => {
                    let q = bytes[i + 1];
                    let start = i + 2;
                    let len = src[start..]
                        .find(q as char)
                        .ok_or(TemplateError::Unterminated { template: self.name, offset: i })?;
                    let var = &src[start..start + len];
                    let value = vars
                        .0
                        .get(var)
                        .ok_or_else(|| TemplateError::Missing { template: self.name, var: var.to_owned() })?;
                    match value {
                        Value::Unexpanded => out.push_str(&src[i..start + len + 1]),
                        Value::Text(value) => {
                            let quoted = if q == b'"' { quote::ident(value) } else { quote::literal(value) }.map_err(
                                |source| TemplateError::Quote { template: self.name, var: var.to_owned(), source },
                            )?;
                            out.push_str(&quoted);
                        }
                    }
                    content = true;
                    i = start + len + 1;
                }
                b';' => {
                    out.push(';');
                    ends.push(out.len());
                    content = true;
                    i += 1;
                }
                _ => {
                    let ch = src[i..].chars().next().expect("in bounds");
                    out.push(ch);
                    content |= !ch.is_whitespace();
                    i += ch.len_utf8();
                }
            }
        }
        if !keep_comments {
            if !content {
                out.truncate(line_start);
            }
            // Only the scanner's own line breaks can be at the end here (a value is always quoted).
            while out.ends_with('\n') {
                out.pop();
            }
        }
        Ok((out, ends))
    }
}

/// The opening delimiter of a dollar-quoted string at byte `i` of `src` (`$$` or `$tag$`), if one starts
/// there: not right after a letter, digit, `_` or `$` (that `$` is part of a name), and a tag that starts
/// with a letter or `_` (so `$1` is a parameter).
fn dollar_tag(src: &str, i: usize) -> Option<&str> {
    let bytes = src.as_bytes();
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'$')) {
        return None;
    }
    let rest = &src[i + 1..];
    let tag_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    if rest.as_bytes().get(tag_len) != Some(&b'$') || rest.as_bytes().first().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(&src[i..i + tag_len + 2])
}

impl qrd_exit::UserError for TemplateError {
    fn exit_status(&self) -> qrd_exit::ExitStatus {
        match self {
            // A name given to qrd that PostgreSQL cannot take.
            TemplateError::Quote { source, .. } => source.exit_status(),
            // A value for the dry run's psql script that psql could not take (a password with a line break).
            TemplateError::Value { .. } => qrd_exit::ExitStatus::Refused,
            TemplateError::Missing { .. } | TemplateError::Unterminated { .. } | TemplateError::Include { .. } => {
                qrd_exit::ExitStatus::Failed
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            TemplateError::Quote { source, .. } => source.hint(),
            TemplateError::Value { .. } => Some("give a value without line breaks".into()),
            _ => Some("this is a defect in qrd: nothing was run (please report it)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DO block's body is one dollar-quoted string: its `;` end no statement, its `:'x'` is no variable.
    #[test]
    fn dollar_quoted_bodies_are_verbatim() {
        let t = Template {
            name: "t.sql",
            text: "DO $b$\nBEGIN\n  -- inside\n  PERFORM :'x'; RAISE NOTICE 'a;b';\nEND\n$b$;\nSELECT $1, a$b, :'x', $$;$$;\n",
        };
        let vars = Vars::new().set("x", "v");
        let statements = t.render_statements(&vars).unwrap();
        assert_eq!(
            statements,
            vec![
                "DO $b$\nBEGIN\n  -- inside\n  PERFORM :'x'; RAISE NOTICE 'a;b';\nEND\n$b$;",
                "SELECT $1, a$b, 'v', $$;$$;"
            ]
        );
        let open = Template { name: "open.sql", text: "DO $x$ BEGIN END;" };
        assert!(matches!(open.render(&vars), Err(TemplateError::Unterminated { .. })));
    }

    const T: Template = Template {
        name: "test.sql",
        text: "-- keeps :\"role\" in comments\nALTER ROLE :\"role\" PASSWORD :'pw'; SELECT 'a:''b'::text, \":\"\"x\";\n",
    };

    /// A `\ir` line is the shared file's text: one script for `--dry-run`, three statements for the server
    /// (recorders off, the statement, recorders back), and nothing but the known shared files.
    #[test]
    fn shared_files_are_included_in_place() {
        let set = crate::sql_template!("provision/set_password.sql");
        let vars = Vars::new().set("role", "r").set("verifier", "v");
        let script = set.render(&vars).unwrap();
        assert!(!script.contains("\\ir"), "{script}");
        assert!(
            script.contains("'pgaudit.log' THEN 'none'") && script.contains("set_config(name, reset_val"),
            "{script}"
        );
        let statements = set.render_statements(&vars).unwrap();
        assert_eq!(statements.len(), 3, "{statements:?}");
        assert!(statements[1].starts_with("ALTER ROLE \"r\""), "{statements:?}");
        let bad = Template { name: "x/bad.sql", text: "\\ir ../nowhere.sql\nSELECT 1;\n" };
        assert!(matches!(bad.render(&vars), Err(TemplateError::Include { .. })));
    }

    #[test]
    fn expands_only_real_variables() {
        let vars = Vars::new().set("role", "Q\"S R").set("pw", "it's");
        let got = T.render(&vars).unwrap();
        assert_eq!(
            got,
            "-- keeps :\"role\" in comments\nALTER ROLE \"Q\"\"S R\" PASSWORD 'it''s'; SELECT 'a:''b'::text, \":\"\"x\";\n"
        );
        assert_eq!(
            T.render_statement(&vars).unwrap(),
            "ALTER ROLE \"Q\"\"S R\" PASSWORD 'it''s'; SELECT 'a:''b'::text, \":\"\"x\";"
        );
    }

    #[test]
    fn missing_and_invalid_variables_are_errors() {
        assert!(matches!(T.render(&Vars::new().set("role", "x")), Err(TemplateError::Missing { .. })));
        let kept = T.render(&Vars::new().set("role", "r").unexpanded("pw")).unwrap();
        assert!(kept.contains("PASSWORD :'pw';"), "{kept}");
        let long = "x".repeat(64);
        assert!(matches!(T.render(&Vars::new().set("role", long).set("pw", "p")), Err(TemplateError::Quote { .. })));
        let open = Template { name: "open.sql", text: "SELECT :'x" };
        assert!(matches!(open.render(&Vars::new().set("x", "1")), Err(TemplateError::Unterminated { .. })));
    }

    #[test]
    fn values_that_look_like_comments_or_blank_lines_survive() {
        let t =
            Template { name: "t.sql", text: "-- head\n\nCREATE ROLE :\"role\"; -- tail\n  \n-- more\nSELECT :'pw';\n" };
        let vars = Vars::new().set("role", "nl\n\n-- not a comment\nrole").set("pw", "a\n\nb");
        assert_eq!(
            t.render_statement(&vars).unwrap(),
            "CREATE ROLE \"nl\n\n-- not a comment\nrole\"; \nSELECT 'a\n\nb';"
        );
        assert_eq!(
            t.render_statements(&vars.clone().set("pw", "x;y")).unwrap(),
            vec!["CREATE ROLE \"nl\n\n-- not a comment\nrole\";", "SELECT 'x;y';"]
        );
    }
}
