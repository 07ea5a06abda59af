//! Code generated from `proto/` by `tests/bootstrap.rs` (tonic-prost-build over protox). Do not edit.
#![allow(clippy::all, missing_docs, unused_qualifications)]

/// `k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1`.
pub mod v1beta1 {
    include!("v1beta1.rs");
}

/// `k8s.io/kubelet/pkg/apis/pluginregistration/v1` (proto package `pluginregistration`).
pub mod pluginregistration {
    include!("pluginregistration.rs");
}

/// `k8s.io/kubelet/pkg/apis/podresources/v1` (proto package `v1`): the kubelet's PodResources API.
pub mod podresources {
    include!("v1.rs");
}
