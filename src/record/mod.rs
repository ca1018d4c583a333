//! Recording (stub while the pieces land).

pub mod bitstream;
pub mod depacketize;
pub mod mkv;
pub mod reorder;
