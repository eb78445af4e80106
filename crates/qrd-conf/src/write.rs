//! Safe file writes (being written).
