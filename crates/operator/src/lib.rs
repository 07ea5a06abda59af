//! sriov-operator (being built).

pub mod admission;
pub mod webhook;
