//! The command-line grammar.

use clap::{Parser, Subcommand};

use crate::commands::{
    backup::BackupArgs, check::CheckArgs, conf::ConfArgs, drill::DrillArgs, failover::FailoverArgs, ha::HaArgs,
    hba::HbaArgs, password::PasswordArgs, provision::ProvisionArgs, restore::RestoreArgs, scram::ScramArgs,
    ssl::SslArgs, standby::StandbyArgs, switchover::SwitchoverArgs,
};

/// qrd — the PostgreSQL repository database of Qlik Sense Enterprise on Windows, done safely.
///
/// Connection options work like psql's (-h, -p, -U, -d and the PG* environment), with the repository's
/// default port 4432. Passwords are never taken as arguments.
#[derive(Debug, Parser)]
#[command(name = "qrd", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More logging on stderr (-v: statements run and tools found; -vv: everything).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the four Qlik databases, the repository role and the guide's privileges (idempotent).
    Provision(ProvisionArgs),
    /// Check a server against what Qlik Sense needs; exit 1 if any check fails.
    Check(CheckArgs),
    /// Read and edit postgresql.conf (or ALTER SYSTEM) safely: get, set, tune
    Conf(ConfArgs),
    /// Read, edit and explain pg_hba.conf safely: list, add, remove, allow-nodes, explain
    Hba(HbaArgs),
    /// Set a role's password safely (verifier computed here, never the plaintext on the wire)
    Password(PasswordArgs),
    /// MD5 to SCRAM-SHA-256: status, and a migration that locks nobody out
    Scram(ScramArgs),
    /// TLS for the repository: enable, disable --temporary, restore, status
    Ssl(SslArgs),
    /// Back up the roles and every Qlik database into one verified bundle; verify, list, prune bundles
    Backup(BackupArgs),
    /// Restore a bundle: missing roles and databases created, pg_restore, row counts proven against the manifest
    Restore(RestoreArgs),
    /// A disaster-recovery drill: restore a bundle into scratch databases, prove every row count, report RTO/RPO
    Drill(DrillArgs),
    /// Streaming-replica standbys: prepare the primary, clone a standby, status
    Standby(StandbyArgs),
    /// Promote a standby (refusing while the old primary still accepts writes), wait for writes, tell the Qlik steps
    Failover(FailoverArgs),
    /// The planned move: stop the primary cleanly, let the standby replay everything, promote it, make the old primary follow
    Switchover(SwitchoverArgs),
    /// High availability on Patroni + etcd behind HAProxy: init, status, switchover, check
    Ha(HaArgs),
}

/// The grammar, with `--help` (long only) on every subcommand: `-h` is the host there, as in psql.
pub fn command() -> clap::Command {
    fn long_help_only(cmd: clap::Command) -> clap::Command {
        cmd.disable_help_flag(true)
            .arg(
                clap::Arg::new("help")
                    .long("help")
                    .action(clap::ArgAction::Help)
                    .help("Print help")
                    .help_heading(None::<&str>),
            )
            .mut_subcommands(long_help_only)
    }
    <Cli as clap::CommandFactory>::command().mut_subcommands(long_help_only)
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (two arguments with one name, a `requires` that
    /// names nothing …), which otherwise fire only when that subcommand is parsed.
    #[test]
    fn grammar_is_consistent() {
        super::command().debug_assert();
    }
}
