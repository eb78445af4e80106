//! Parse errors that name the place: `file:line:column: message`.

use std::path::PathBuf;

/// A syntax error in a configuration file. `line` and `column` count from 1; the column counts characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct ParseError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(path: impl Into<PathBuf>, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self { path: path.into(), line, column, message: message.into() }
    }
}
