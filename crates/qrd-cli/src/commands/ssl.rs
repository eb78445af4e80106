//! `qrd ssl enable | disable --temporary | restore | status` (issue 4).
//! STUB: filled in by the SSL work.

use clap::{Args, Subcommand};

use crate::error::{CliError, ExitStatus};
use crate::options::HelpArg;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct SslArgs {
    #[command(subcommand)]
    pub command: SslCommand,
    #[command(flatten)]
    pub help: HelpArg,
}

#[derive(Debug, Subcommand)]
pub enum SslCommand {
    /// Settings, certificate and this connection's TLS
    Status,
}

pub async fn execute(_args: SslArgs) -> Result<ExitStatus, CliError> {
    Err(CliError::new(ExitStatus::Refused, "qrd ssl is not built yet"))
}
