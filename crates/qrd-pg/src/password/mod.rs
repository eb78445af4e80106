//! Passwords, one concern in five parts: where a password comes from ([`source`]: a file, an environment
//! variable or a prompt, never argv), libpq's password file ([`passfile`]), the [`Secret`] that keeps a
//! password out of logs and `Debug`, the verifiers the server stores ([`verifier`]: SCRAM-SHA-256 and md5,
//! computed and checked here), and a role's stored verifier read, set and proven by a login ([`stored`]).

pub mod passfile;
mod secret;
pub mod source;
pub mod stored;
pub mod verifier;

pub use secret::Secret;
pub use source::{PasswordError, can_prompt, from_env, from_file, prompt};
