//! The fake kubelet lives in the library (`sriov_device_plugin::fake_kubelet`) so the demo binary
//! uses it too.
#![allow(dead_code, unused_imports)]

pub use sriov_device_plugin::fake_kubelet::*;
