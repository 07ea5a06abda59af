//! sriovdp: the kubelet device plugin for SR-IOV network functions, a drop-in replacement for
//! upstream's sriov-network-device-plugin (same config file, resource names, sockets and
//! `PCIDEVICE_*` environment). See `docs/device-plugin.md`.
//!
//! Functional core (pure, unit-tested): [`config`], [`range`], [`selector`], [`pool`],
//! [`allocate`], [`preferred`], [`explain`]. Edges: host discovery ([`from_host`]), link state
//! ([`health`]), the gRPC servers and kubelet registration ([`server`], [`kubelet`]), and the
//! life cycle ([`manager`]).

pub mod allocate;
pub mod authority;
pub mod authority_stream;
pub mod config;
pub mod device;
pub mod devinfo;
pub mod explain;
/// Test-only (feature `fake-kubelet`): not in release builds of `sriovdp`.
#[cfg(feature = "fake-kubelet")]
pub mod fake_kubelet;
pub mod from_host;
pub mod r#gen;
pub mod health;
pub mod kubelet;
pub mod manager;
pub mod memory;
pub mod pod_resources;
pub mod pool;
pub mod preferred;
pub mod range;
pub mod selector;
pub mod server;
pub mod sysfs_extra;

pub use r#gen::{pluginregistration, podresources, v1beta1};

#[cfg(test)]
mod allocate_tests;
#[cfg(test)]
mod selector_tests;
#[cfg(test)]
mod testutil;
