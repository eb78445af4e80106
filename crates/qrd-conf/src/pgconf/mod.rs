//! `postgresql.conf` (PostgreSQL 12–16): a lossless model of one file with minimal edits ([`ConfFile`]),
//! the tree of includes plus `postgresql.auto.conf` the way the server reads it ([`ConfTree`]), and checking
//! a value against the server's catalog row ([`validate`]).
//!
//! The syntax is the server's scanner (`src/backend/utils/misc/guc-file.l`), not an approximation: a line
//! is `name = value` or `name value`; names are case-insensitive and may carry one dot; a value is one
//! token — a single-quoted string (`''` and backslash escapes), a word, a path-like word, an integer with
//! optional unit letters, or a real without unit. Anything else, including `1.5GB` or `/path` unquoted, is
//! a syntax error the server would refuse to start with, and parsing reports it with line and column.

mod file;
mod lexer;
mod plan;
pub(crate) mod tree;
mod validate;

#[cfg(test)]
mod tests;

pub use file::{
    ConfFile, EditError, Entry, Include, IncludeKind, LineEnding, NulInValue, RemoveChange, SetAction, SetChange,
    Setting, canonical_name, format_value,
};
pub use lexer::TokenKind;
pub use plan::{ConfPlan, PlanError, PlanOptions, plan_settings};
pub use tree::{
    AUTO_CONF_FILE, Assignment, ConfTree, EditTarget, LoadError, MAX_INCLUDE_DEPTH, Note, Origin, Source, TreeFile,
};
pub use validate::{InvalidValue, Normalized, SettingInfo, VarType, format_g, needs_restart, parse_bool, validate};
