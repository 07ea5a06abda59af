//! The network resources injector (upstream k8snetworkplumbingwg/network-resources-injector):
//! a mutating admission webhook for pod CREATE. A pod names its networks by annotation
//! (`k8s.v1.cni.cncf.io/networks`, `v1.multus-cni.io/default-network`); the injector looks the
//! NetworkAttachmentDefinitions up in a watch-fed cache and answers with a JSONPatch that adds
//! the device-plugin resources those NADs name, the `podnetinfo` Downward API volume and the
//! NADs' node selector.
//!
//! Functional core: [`network`] (annotation parsing), [`switches`] (the `nri-control-switches`
//! ConfigMap), [`mutate`] (pod + NADs + switches → patch or denial) and [`review`] (one HTTP
//! request → one HTTP answer) are plain functions. The imperative shell: [`cache`] (kube-runtime
//! reflectors) and [`server`] (HTTPS).

#[cfg(feature = "server")]
pub mod cache;
#[cfg(feature = "server")]
pub mod flags;
pub mod mutate;
pub mod network;
pub mod patch;
pub mod pod;
pub mod review;
#[cfg(feature = "server")]
pub mod server;
pub mod switches;

pub use mutate::{Denied, Mutation, NadLookup, Settings, mutate};
pub use pod::PodView;
pub use switches::Switches;
