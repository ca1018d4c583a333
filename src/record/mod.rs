//! Recording (stub while the pieces land).

pub mod mkv;
