//! Passwords and authentication methods on the repository server, as plan/apply APIs the command line
//! renders:
//!
//! - [`password`]: the guide's `ALTER USER … WITH PASSWORD` done right (`qrd password set`): a verifier
//!   computed here, the stored hash read back, a real login;
//! - [`scram`]: where a server stands on md5 and SCRAM-SHA-256 (`qrd scram status`), and the move to
//!   SCRAM that locks nobody out (`qrd scram migrate`), across pg_hba.conf and the files it includes;
//! - what both share, once: where each role's password comes from ([`source`]), checking a stored verifier
//!   and a real login over the route's pg_hba.conf rule ([`verify`]), and what a Qlik site must update
//!   after a password change ([`qlik`]).
//!
//! Progress and warnings are `tracing` events (`info!`, `warn!`); errors are [`AuthError`], each with a
//! [`hint`](AuthError::hint) for the DBA's next step. A password never appears in an error, a log line or a
//! child's argv: it stays in [`qrd_pg::Secret`]s and reaches the server as a verifier only.

pub mod error;
pub mod password;
pub mod qlik;
pub mod scram;
pub mod source;
pub mod verify;

pub use error::AuthError;
