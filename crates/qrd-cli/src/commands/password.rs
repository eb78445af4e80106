//! `qrd password` (issue 4). Work in progress.

use clap::Args;

use crate::error::{CliError, ExitStatus};
use crate::options::HelpArg;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct PasswordArgs {
    #[command(flatten)]
    pub help: HelpArg,
}

pub async fn execute(_args: PasswordArgs) -> Result<ExitStatus, CliError> {
    Err(CliError::new(ExitStatus::Refused, "not built yet"))
}
