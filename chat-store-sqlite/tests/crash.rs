//! The crash test: see `main`.
fn main() {}
