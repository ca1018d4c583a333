//! Command-line flags (Galène's spelling).
