//! A Multus-compatible thin meta CNI plugin (installed as the binary `multus`, so a Multus
//! thin-plugin config runs it unchanged). See `docs/meta-plugin.md`.
//!
//! Functional core (plain functions over plain data, unit-tested without I/O): [`config`]
//! (the config and its checks), [`cniargs`], [`delegate`] (delegate configs, interface
//! names, runtime config, `deviceID`, `CNI_ARGS`), [`devices`] (the next unused device of a
//! resource), [`default_route`] (Multus' `default-route` decision), [`status`]
//! (network-status), [`result`] (result versions); the network selection annotation is parsed
//! by [`sriov_api::selection`]. The shell: [`exec`] (one plugin call), [`chain`] (a delegate's
//! plugin chain and the result cache), [`routes`] (default routes in the pod netns),
//! [`files`], [`kube_api`], [`cmd`] (the commands), [`log`].

pub mod chain;
pub mod cmd;
pub mod cniargs;
pub mod config;
pub mod default_route;
pub mod delegate;
pub mod devices;
pub mod exec;
pub mod files;
pub mod kube_api;
pub mod log;
pub mod result;
pub mod routes;
pub mod status;
