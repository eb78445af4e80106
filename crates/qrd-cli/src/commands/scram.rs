//! `qrd scram` (issue 4). Work in progress.

use clap::Args;

use crate::error::{CliError, ExitStatus};
use crate::options::HelpArg;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct ScramArgs {
    #[command(flatten)]
    pub help: HelpArg,
}

pub async fn execute(_args: ScramArgs) -> Result<ExitStatus, CliError> {
    Err(CliError::new(ExitStatus::Refused, "not built yet"))
}
