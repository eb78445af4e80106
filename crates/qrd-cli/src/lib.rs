//! qrd's command line: clap definitions, one module per subcommand, rendering and exit codes. The binary
//! (`crates/qrd`) only calls [`main`].

mod cli;
mod commands;
mod error;
mod options;
mod output;

use std::ffi::OsString;
use std::process::ExitCode;

pub use error::{CliError, ExitStatus};

/// Parses `args`, runs the command and returns its exit code (see the README's table).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let parsed = cli::command().try_get_matches_from(args);
    let cli = match parsed.and_then(|m| <cli::Cli as clap::FromArgMatches>::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { ExitStatus::Usage as u8 } else { 0 });
        }
    };
    init_logging(cli.verbose);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let outcome = runtime.block_on(run_interruptibly(cli.command));
    let code = match (&outcome, qrd_pgbin::interrupt::received()) {
        (Some(Ok(status)), None) => ExitCode::from(*status as u8),
        (Some(Err(err)), None) => {
            output::print_error(err);
            ExitCode::from(err.status as u8)
        }
        // Interrupted: what the command said as it stopped, then the shell's code for the signal.
        (_, Some(signal)) => {
            if let Some(Err(err)) = &outcome {
                output::print_error(err);
            }
            ExitCode::from(qrd_pgbin::interrupt::exit_code(signal))
        }
        (None, None) => unreachable!("the command is only abandoned after a signal"),
    };
    // A command abandoned on a second signal may have blocking work (compression, extraction) going on: do
    // not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

/// Runs the command with Ctrl-C and SIGTERM taken over. On the first signal the command unwinds by itself:
/// its running tools are killed with their process groups, its waits end, and its cleanup runs as for any
/// failure (a backup's staging directory, a drill's scratch databases, a restore's unfinished databases).
/// A second signal abandons it at once; its children still die with their process groups. `None` then.
async fn run_interruptibly(command: cli::Command) -> Option<Result<ExitStatus, CliError>> {
    use qrd_pgbin::interrupt;
    interrupt::install();
    let command = commands::run(command);
    tokio::pin!(command);
    tokio::select! {
        done = &mut command => return Some(done),
        signal = interrupt::interrupted() => {
            tracing::warn!("received {signal}: stopping (again to quit at once)");
        }
    }
    tokio::select! {
        done = &mut command => Some(done),
        () = interrupt::signals(2) => None,
    }
}

/// Messages go to stderr through `tracing`, one way for every crate: `info!` is a note (progress, what was
/// done), `warn!` a warning (`warning: …`), `debug!` what `-v` adds (statements run, tools found), and `-vv`
/// shows everything. `QRD_LOG` takes a tracing filter directly.
///
/// Whatever the filter, tokio-postgres's records above `info` are dropped before they reach it: at `debug`
/// it logs the text of every statement it sends, which would put a password verifier on the terminal.
/// qrd logs its own statements with the verifier left out.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // `qrd` matches every crate of ours by prefix (qrd_pg, qrd_server, …).
    let filter = match std::env::var("QRD_LOG") {
        Ok(f) => EnvFilter::new(f),
        Err(_) => EnvFilter::new(match verbose {
            0 => "warn,qrd=info",
            1 => "warn,qrd=debug",
            _ => "debug",
        }),
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::stderr_color())
        .event_format(output::MessageFormat { color: output::stderr_color() })
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_ok()
        && log::set_boxed_logger(Box::new(NoStatementText(tracing_log::LogTracer::new()))).is_ok()
    {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// The `log` → tracing bridge, minus tokio-postgres's statement-level records.
struct NoStatementText(tracing_log::LogTracer);

impl NoStatementText {
    fn passes(metadata: &log::Metadata<'_>) -> bool {
        !(metadata.target().starts_with("tokio_postgres") && metadata.level() > log::Level::Info)
    }
}

impl log::Log for NoStatementText {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        Self::passes(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if Self::passes(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {}
}
