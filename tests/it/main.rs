//! Integration tests: the built `qrd` binary against real, throwaway PostgreSQL servers of every supported
//! major (16 and 15 in every run; 14.17 and 12 in the smoke set). Assertions are on what the server holds.
//! Test names end in `::pg16`, `::pg15`, `::pg14`, `::pg12`, so one major can be selected with a filter.

mod common;

mod backup;
mod backup_faults;
mod check;
mod conf;
mod connect;
mod fixtures;
mod guide;
mod ha;
mod hba;
mod hostile;
mod managed;
mod password;
mod prompt;
mod provision;
mod scram;
mod ssl;
mod standby;
mod tls;
