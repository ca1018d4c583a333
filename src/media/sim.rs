//! In-memory network simulation (being written).
