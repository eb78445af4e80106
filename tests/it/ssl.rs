//! `qrd ssl` on real servers (issue 4). Filled in by the SSL work.
