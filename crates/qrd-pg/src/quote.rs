//! The one quoting helper. Every identifier and literal that is not a bind parameter goes through here.
//!
//! Identifiers are *always* double-quoted: Qlik's database names are mixed case (`QSR`, `SenseServices`) and
//! an unquoted `ALTER DATABASE QSR` silently means `qsr`. Escaping itself is postgres-protocol's port of
//! libpq's `PQescapeInternal` (it also emits `E'…'` for literals holding backslashes, correct under either
//! value of `standard_conforming_strings`).

/// PostgreSQL's NAMEDATALEN - 1: longer names are silently truncated by the server.
pub const MAX_NAME_BYTES: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("a name cannot be empty")]
    EmptyName,
    #[error("the name {name:?} is {len} bytes long; PostgreSQL would silently truncate it to {MAX_NAME_BYTES} bytes")]
    NameTooLong { name: String, len: usize },
    #[error("{what} contains a NUL character, which PostgreSQL cannot store")]
    Nul { what: &'static str },
}

/// Quotes an identifier (role, database, schema name), refusing what the server would mangle.
pub fn ident(name: &str) -> Result<String, QuoteError> {
    if name.is_empty() {
        return Err(QuoteError::EmptyName);
    }
    if name.contains('\0') {
        return Err(QuoteError::Nul { what: "a name" });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(QuoteError::NameTooLong { name: name.to_owned(), len: name.len() });
    }
    Ok(postgres_protocol::escape::escape_identifier(name))
}

/// Quotes a string literal.
pub fn literal(value: &str) -> Result<String, QuoteError> {
    if value.contains('\0') {
        return Err(QuoteError::Nul { what: "a literal" });
    }
    Ok(postgres_protocol::escape::escape_literal(value).trim_start().to_owned())
}

impl qrd_exit::UserError for QuoteError {
    /// A name or value PostgreSQL would refuse or mangle: refused before anything is sent.
    fn exit_status(&self) -> qrd_exit::ExitStatus {
        qrd_exit::ExitStatus::Refused
    }

    fn hint(&self) -> Option<String> {
        Some("choose a name of 1 to 63 bytes and values without NUL characters".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(ident("QSR").unwrap(), "\"QSR\"");
        assert_eq!(ident("qliksenserepository").unwrap(), "\"qliksenserepository\"");
        assert_eq!(ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(ident("rôle $$ x").unwrap(), "\"rôle $$ x\"");
        assert_eq!(ident(""), Err(QuoteError::EmptyName));
        assert!(matches!(ident(&"x".repeat(64)), Err(QuoteError::NameTooLong { len: 64, .. })));
        // 21 three-byte characters = 63 bytes: fine; one more is not.
        assert_eq!(ident(&"€".repeat(21)), Ok(format!("\"{}\"", "€".repeat(21))));
        assert!(matches!(ident(&"€".repeat(22)), Err(QuoteError::NameTooLong { len: 66, .. })));
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's").unwrap(), "'it''s'");
        assert_eq!(literal(r"a\b").unwrap(), r"E'a\\b'");
        assert_eq!(literal("$$").unwrap(), "'$$'");
        assert_eq!(literal("a\0b"), Err(QuoteError::Nul { what: "a literal" }));
    }
}
