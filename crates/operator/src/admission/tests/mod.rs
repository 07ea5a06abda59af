//! Unit tests of admission: pure functions over JSON fixtures, no I/O.

mod dynamic;
mod fixtures;
mod mutate;
mod others;
mod review;
mod statics;
