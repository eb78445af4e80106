//! `pg_hba.conf` as a lossless model: parse, edit without disturbing other lines, and explain which line a
//! connection would match, the way PostgreSQL 12–16 read the file.
//!
//! The parser mirrors the server's tokenizer (`src/backend/libpq/hba.c`) character for character rather
//! than the documentation, because the two disagree at the edges, and a DBA needs to know what the server
//! will do. Behaviour checked against real 12, 14, 15 and 16 servers (`pg_hba_file_rules` and connection
//! attempts):
//!
//! - Fields are separated by blanks; a comma ends a token and the field continues after any blanks, so
//!   `all, b` is one list but `all ,b` is two fields.
//! - A token counts as quoted only if its first character is a quote: `a"ll"` is the keyword `all`.
//! - The connection type and the include directives are compared without regard to quoting (`"host"` works).
//! - A line ending in a backslash continues on the next line from PostgreSQL 14 on (12 reads the backslash as
//!   text). Comment lines continue too: a comment ending in `\` swallows the next line, record and all.
//! - A UTF-8 byte-order mark is not skipped: every version reads it as part of line 1 and rejects the file
//!   (`invalid connection type "\u{feff}"`). We keep it (so the file round-trips) and report it in
//!   [`HbaFile::diagnostics`].
//! - An address that is not numeric is a host name, even `999.1.1.1`; host bits in a CIDR (`10.0.0.1/24`)
//!   are accepted and ignored when matching; glibc's short forms (`127.1`, `0x7f000001`) are addresses.
//!
//! Edits work on text: each entry keeps its raw lines, an edit splices the changed lines and re-parses, so
//! every other byte stays as it was and the model can never drift from the text.
//!
//! [`HbaTree`] reads the files a PostgreSQL 16 pg_hba.conf includes, for changes that must reach every rule.

mod address;
mod explain;
mod file;
mod record;
mod rules;
mod token;
mod tree;

#[cfg(test)]
mod tests;

pub use address::{Address, AddressError};
pub use explain::{Client, ClientHostname, Facts, Interface, Outcome, Replication, Request, Roles, admits_user};
pub use file::{Diagnostic, EditError, HbaFile, Include, IncludeKind, RecordMatch, RecordRef, Spans};
pub use record::{AuthOption, ConnType, DatabaseKind, Method, Record, RecordError, Token, UserKind};
pub use rules::{AddOutcome, NodeRules, NodeRulesReport, Placement, RuleError, rule_from_words};
pub use token::Pos;
pub use tree::{HbaTree, HbaTreeFile};
