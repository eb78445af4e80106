//! What the server's TLS setup looks like, for `qrd ssl status` and `qrd check` (issue 4).
//! STUB: filled in by the SSL work.

use crate::Session;
use crate::inventory::QueryError;

/// The server's TLS settings and certificate, as far as a superuser connection can read them.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {}

/// Reads the server's TLS settings; `Ok(None)` when there is nothing to report.
pub async fn gather(_session: &Session) -> Result<Option<TlsInfo>, QueryError> {
    Ok(None)
}
