//! sriov-operator: the operator's decisions (render: policies → node states, device-plugin
//! config, NADs) as pure functions, and its admission webhook.

pub mod admission;
#[cfg(feature = "cluster")]
pub mod controller;
pub mod render;
#[cfg(feature = "cluster")]
pub mod webhook;
