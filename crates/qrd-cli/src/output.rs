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

/// A note on stderr (progress and context that is not the command's data): an `info` event, shown like
/// every other crate's.
/// Findings as `qrd check` and `qrd ha check` print them: status, id, message, and the hint below.
pub fn print_findings(findings: &[qrd_check::Finding]) {
    let width = findings.iter().map(|f| f.id.chars().count()).max().unwrap_or(0);
    for f in findings {
        let status = format!("{:<4}", f.status.as_str());
        println!("{}  {:<width$}  {}", paint_status(&status), f.id, f.message);
        if let Some(hint) = &f.hint {
            println!("{:<4}  {:<width$}  hint: {hint}", "", "");
        }
    }
}

/// `--json` output: the value, pretty-printed, on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("qrd's results serialise"));
}

pub fn note(msg: impl std::fmt::Display) {
    tracing::info!("{msg}");
}

/// How events look on stderr: a note as its text, a warning as `warning: …`, anything else with its level
/// (`debug: …`); the label is coloured on a terminal, and the word is always there.
pub struct MessageFormat {
    pub color: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for MessageFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing::Level;
        let level = *event.metadata().level();
        let label = match level {
            Level::INFO => None,
            Level::WARN => Some("warning"),
            Level::ERROR => Some("error"),
            Level::DEBUG => Some("debug"),
            Level::TRACE => Some("trace"),
        };
        if let Some(label) = label {
            let painted = match (self.color, level) {
                (false, _) => label.to_owned(),
                (true, Level::WARN) => label.yellow().bold().to_string(),
                (true, Level::ERROR) => label.red().bold().to_string(),
                (true, _) => label.dimmed().to_string(),
            };
            write!(writer, "{painted}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Paints `text` when stdout is a terminal. Meaning never rests on colour alone: the word is always there.
pub fn paint_status(text: &str) -> String {
    if !stdout_color() {
        return text.to_owned();
    }
    match text.trim_end() {
        "ok" | "done" => text.green().to_string(),
        "warn" => text.yellow().to_string(),
        "skip" => text.blue().to_string(),
        "fail" => text.red().bold().to_string(),
        _ => text.to_owned(),
    }
}

/// Writes a checked change: on `--dry-run` the unified diffs go to stdout (the command's data).
pub async fn write_checked(
    change: &qrd_server::CheckedWrite,
    session: Option<&qrd_pg::Session>,
    opts: qrd_server::WriteOptions,
) -> Result<qrd_server::Written, CliError> {
    let written = change.apply(session, opts).await?;
    for diff in &written.diffs {
        print!("{diff}");
    }
    Ok(written)
}

/// A progress bar on stderr for the long steps of backup, restore and drill, when stderr is a terminal;
/// nothing otherwise (cron and systemd logs get the notes only).
pub fn progress() -> qrd_backup::progress::Shared {
    if std::io::stderr().is_terminal() { std::sync::Arc::new(Bar::default()) } else { qrd_backup::progress::silent() }
}

#[derive(Debug, Default)]
struct Bar(std::sync::Mutex<Option<indicatif::ProgressBar>>);

impl qrd_backup::progress::Progress for Bar {
    fn start(&self, what: &str, total: Option<u64>) {
        let (bar, template) = match total {
            Some(t) => (indicatif::ProgressBar::new(t), "{msg} [{bar:20}] {bytes}/{total_bytes} ({eta} left)"),
            None => (indicatif::ProgressBar::new_spinner(), "{spinner} {msg}: {bytes} ({elapsed})"),
        };
        let style = indicatif::ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ");
        bar.set_style(style);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Some(old) = self.0.lock().expect("not poisoned").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn set(&self, done: u64) {
        if let Some(bar) = &*self.0.lock().expect("not poisoned") {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.lock().expect("not poisoned").take() {
            bar.finish_and_clear();
        }
    }
}
