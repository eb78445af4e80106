//! One module per subcommand; each has an `Args` struct and an `execute` function.

pub mod backup;
pub mod check;
pub mod conf;
pub mod drill;
pub mod failover;
pub mod ha;
pub mod hba;
pub mod password;
pub mod provision;
pub mod restore;
pub mod scram;
pub mod ssl;
pub mod standby;
pub mod switchover;

use crate::cli::Command;
use crate::error::{CliError, ExitStatus};

pub async fn run(command: Command) -> Result<ExitStatus, CliError> {
    match command {
        Command::Provision(args) => provision::execute(args).await,
        Command::Backup(args) => backup::execute(args).await,
        Command::Restore(args) => restore::execute(args).await,
        Command::Drill(args) => drill::execute(args).await,
        Command::Check(args) => check::execute(args).await,
        Command::Conf(args) => conf::execute(args).await,
        Command::Hba(args) => hba::execute(args).await,
        Command::Password(args) => password::execute(args).await,
        Command::Scram(args) => scram::execute(args).await,
        Command::Ssl(args) => ssl::execute(args).await,
        Command::Standby(args) => standby::execute(args).await,
        Command::Failover(args) => failover::execute(args).await,
        Command::Switchover(args) => switchover::execute(args).await,
        Command::Ha(args) => ha::execute(args).await,
    }
}
