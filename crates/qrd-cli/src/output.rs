//! Rendering: data to stdout, messages to stderr, colour only on terminals and never with NO_COLOR.

use std::io::{IsTerminal, Write};

use owo_colors::OwoColorize;

use crate::error::CliError;

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn stderr_color() -> bool {
    color_allowed() && std::io::stderr().is_terminal()
}

pub fn stdout_color() -> bool {
    color_allowed() && std::io::stdout().is_terminal()
}

/// `error: …` then a blank line and `hint: …`, on stderr.
pub fn print_error(err: &CliError) {
    let mut e = std::io::stderr().lock();
    let label = if stderr_color() { "error".red().bold().to_string() } else { "error".to_owned() };
    let _ = writeln!(e, "{label}: {}", err.message);
    if let Some(hint) = &err.hint {
        let label = if stderr_color() { "hint".cyan().bold().to_string() } else { "hint".to_owned() };
        let _ = writeln!(e, "\n{label}: {hint}");
    }
}

/// A note on stderr (progress and context that is not the command's data).
pub fn note(msg: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Paints `text` when stdout is a terminal. Meaning never rests on colour alone: the word is always there.
pub fn paint_status(text: &str) -> String {
    if !stdout_color() {
        return text.to_owned();
    }
    match text.trim_end() {
        "ok" | "done" => text.green().to_string(),
        "warn" => text.yellow().to_string(),
        "fail" => text.red().bold().to_string(),
        _ => text.to_owned(),
    }
}
