//! Everything qrd says to a PostgreSQL server: connections made like libpq tools make them, the one quoting
//! helper every identifier and literal goes through, the SQL templates in `sql/`, the server inventory the
//! commands reason about, and provisioning of the Qlik repository databases.

pub mod connect;
pub mod endpoint;
pub mod inventory;
pub mod password;
pub mod provision;
pub mod quote;
pub mod serverconf;
pub mod session;
pub mod spec;
pub mod template;
#[doc(hidden)]
pub mod testing;
pub mod tls;
pub mod tlsinfo;

pub use connect::{ConnectError, ConnectOpts, SslMode};
pub use endpoint::HostPort;
pub use inventory::Inventory;
pub use password::Secret;
pub use session::Session;
pub use spec::RepoSpec;
