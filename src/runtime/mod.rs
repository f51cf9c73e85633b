//! The inference runtime shared by the native CLI and the browser (DESIGN.md §7).

pub mod kernels;
