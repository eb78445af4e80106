//! pg_hba.conf (owned by the hba helper; being written).
