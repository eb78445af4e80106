//! TLS checks: certificate expiry and the minimum protocol version (issue 4).
//! STUB: filled in by the SSL work; registered in `checks::CHECKS`.

use crate::{Context, Finding};

pub(crate) fn certificate(_ctx: &Context<'_>) -> Vec<Finding> {
    Vec::new()
}

pub(crate) fn tls_min_version(_ctx: &Context<'_>) -> Vec<Finding> {
    Vec::new()
}
