//! `sriovnetwork.openshift.io/v1` API types with upstream's JSON names, defaults and validation.

pub mod node_state;

pub use node_state::{NodeStateInterface, NodeStateSpec, NodeStateStatus, VfGroup};
