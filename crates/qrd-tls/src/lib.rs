//! `qrd ssl`: the guide's "Database traffic encryption" and "Forcing the database connection to use TLS 1.2
//! only" as one checked step ([`enable`]), and its workaround for Qlik's installer ("Unable to upgrade Qlik
//! Sense, missing database": the installer cannot use SSL) as a [`disable`] that saves the exact files and a
//! [`restore`] that puts them back byte for byte. [`status`] reports the server's TLS as it runs.
//!
//! Every change is proven on the server afterwards with real connections: a TLS one that `pg_stat_ssl`
//! reports encrypted, presenting the certificate just installed, and (after enable) a plain one that the
//! server refuses. A failed proof puts back what was there and reloads.

mod disable;
mod enable;
mod error;
mod material;
mod status;

pub use disable::{DisablePlan, Disabled, RestorePlan, Restored, disable, plan_disable, plan_restore, restore};
pub use enable::{EnablePlan, Enabled, enable, plan_enable};
pub use error::TlsError;
pub use material::{Material, lab, read_given};
pub use status::{CertificateSummary, Status, status};

/// The guide's names for Qlik's exported certificate and key ("Database traffic encryption", step 4), and
/// Qlik's name for its exported root certificate.
pub const CERT_NAME: &str = "server.pem";
pub const KEY_NAME: &str = "server_key.pem";
pub const CA_NAME: &str = "root.pem";
/// The guide's cipher list ("Forcing the database connection to use TLS 1.2 only"). It governs TLS 1.2 and
/// below only: TLS 1.3 suites are OpenSSL's defaults (PostgreSQL 12–16 have no setting for them).
pub const GUIDE_CIPHERS: &str = "DEFAULT:!LOW:!EXP:!eNULL:!aNULL:!MD5:!RC2:!RC4:!DES:@STRENGTH";
/// Where `disable --temporary` keeps the files it will put back, inside the data directory.
pub const SAVED_DIR: &str = "qrd-ssl-saved";

/// Where the proofs connect: the base connection options (credentials, timeout) and an optional TCP host
/// (`--proof-host`; else the session's own host when it is TCP, else the first listen address).
#[derive(Debug, Clone)]
pub struct ProofTarget {
    pub base: qrd_pg::ConnectOpts,
    pub host: Option<String>,
}
