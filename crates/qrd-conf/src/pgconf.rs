//! postgresql.conf (owned by the pgconf helper; being written).
