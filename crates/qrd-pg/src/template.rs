//! SQL templates from `sql/`, with psql-style variables: `:"name"` expands to a quoted identifier and
//! `:'name'` to a quoted literal, both through [`crate::quote`]. The files stay valid psql scripts
//! (`psql -v role=… -f file.sql` runs them), so a DBA can read and run exactly what qrd runs.
//!
//! Variables are not expanded inside string literals, quoted identifiers or `--` comments, and `::` casts
//! are left alone, as in psql.

use std::collections::BTreeMap;

use crate::quote::{self, QuoteError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("SQL template {template} uses variable {var:?}, which was not given")]
    Missing { template: &'static str, var: String },
    #[error("SQL template {template}, variable {var:?}: {source}")]
    Quote { template: &'static str, var: String, source: QuoteError },
}

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
        let src = self.text;
        let bytes = src.as_bytes();
        let mut out = String::with_capacity(src.len() + 64);
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'-' if bytes.get(i + 1) == Some(&b'-') => {
                    let end = src[i..].find('\n').map(|n| i + n + 1).unwrap_or(src.len());
                    out.push_str(&src[i..end]);
                    i = end;
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
                    i = end;
                }
                b':' if bytes.get(i + 1) == Some(&b':') => {
                    out.push_str("::");
                    i += 2;
                }
                b':' if matches!(bytes.get(i + 1), Some(b'\'') | Some(b'"')) => {
                    let q = bytes[i + 1];
                    let start = i + 2;
                    let len = src[start..].find(q as char).unwrap_or(src.len() - start);
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
                    i = start + len + 1;
                }
                _ => {
                    let ch = src[i..].chars().next().expect("in bounds");
                    out.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        Ok(out)
    }

    /// The statements without the comment lines, as sent to the server.
    pub fn render_statement(&self, vars: &Vars) -> Result<String, TemplateError> {
        Ok(strip_comment_lines(&self.render(vars)?))
    }
}

/// Drops whole-line `--` comments and blank lines.
pub fn strip_comment_lines(sql: &str) -> String {
    sql.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with("--")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Template = Template {
        name: "test.sql",
        text: "-- keeps :\"role\" in comments\nALTER ROLE :\"role\" PASSWORD :'pw'; SELECT 'a:''b'::text, \":\"\"x\";\n",
    };

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
    }
}
